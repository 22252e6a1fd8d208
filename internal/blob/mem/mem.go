// Package mem is an in-memory blob.Backend for unit tests of the layers above
// package blob. Nothing is durable; otherwise it follows the blob contract
// exactly, including name validation and copy semantics, so that code tested
// against it behaves the same on the real backends.
package mem

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/snapstack/snapstack/internal/blob"
)

// Store is an in-memory blob.Backend. The zero value is not usable; call New.
type Store struct {
	mu      sync.RWMutex
	objects map[string][]byte
}

var _ blob.Backend = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{objects: make(map[string][]byte)}
}

// Put stores a copy of data under name, replacing any previous object.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := begin(ctx, "put", name); err != nil {
		return err
	}
	obj := make([]byte, len(data))
	copy(obj, data)
	s.mu.Lock()
	s.objects[name] = obj
	s.mu.Unlock()
	return nil
}

// Get returns a copy of the object stored under name.
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	if err := begin(ctx, "get", name); err != nil {
		return nil, err
	}
	s.mu.RLock()
	obj, ok := s.objects[name]
	s.mu.RUnlock()
	if !ok {
		return nil, notFound("get", name)
	}
	out := make([]byte, len(obj))
	copy(out, obj)
	return out, nil
}

// Stat reports the size of the object stored under name.
func (s *Store) Stat(ctx context.Context, name string) (int64, error) {
	if err := begin(ctx, "stat", name); err != nil {
		return 0, err
	}
	s.mu.RLock()
	obj, ok := s.objects[name]
	s.mu.RUnlock()
	if !ok {
		return 0, notFound("stat", name)
	}
	return int64(len(obj)), nil
}

// List calls fn for every name beginning with prefix. The names are collected
// first, so fn may call back into the Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(name string) error) error {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return fmt.Errorf("blob/mem: list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob/mem: list %q: %w", prefix, err)
	}
	s.mu.RLock()
	var names []string
	for name := range s.objects {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	s.mu.RUnlock()
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("blob/mem: list %q: %w", prefix, err)
		}
		if err := fn(name); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the object stored under name, if any.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := begin(ctx, "delete", name); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.objects, name)
	s.mu.Unlock()
	return nil
}

// Len reports the number of objects stored.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.objects)
}

// begin validates name and checks ctx, the common prologue of every call.
func begin(ctx context.Context, op, name string) error {
	if err := blob.ValidateName(name); err != nil {
		return fmt.Errorf("blob/mem: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob/mem: %s %q: %w", op, name, err)
	}
	return nil
}

func notFound(op, name string) error {
	return fmt.Errorf("blob/mem: %s %q: %w", op, name, blob.ErrNotFound)
}
