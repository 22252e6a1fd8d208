package chunk

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/snapstack/snapstack/internal/blob"
)

// Store keeps chunks on a blob.Backend, one object per chunk in the format
// described in the package documentation. It is safe for concurrent use.
type Store struct {
	b     blob.Backend
	codec *codec
}

// NewStore returns a Store keeping its chunks on b and writing new ones
// with compression write (reads accept every compression).
func NewStore(b blob.Backend, write Compression) (*Store, error) {
	c, err := newCodec(write)
	if err != nil {
		return nil, fmt.Errorf("chunk: %w", err)
	}
	return &Store{b: b, codec: c}, nil
}

// Put stores data (a chunk's plaintext, at most MaxSize bytes) if no chunk
// with its ID is stored yet, and returns its ID and whether it was newly
// written. An existing object is trusted to be intact (Get verifies it):
// Put does not read it back. Concurrent Puts of the same data may both
// report a write; the object is then written twice with identical content.
func (s *Store) Put(ctx context.Context, data []byte) (ID, bool, error) {
	if len(data) > MaxSize {
		return ID{}, false, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), MaxSize)
	}
	id := Sum(data)
	switch has, err := s.Has(ctx, id); {
	case err != nil:
		return id, false, err
	case has:
		return id, false, nil
	}
	if err := s.b.Put(ctx, objectName(id), s.codec.encode(data)); err != nil {
		return id, false, fmt.Errorf("chunk: put %s: %w", id, err)
	}
	return id, true, nil
}

// Get returns the plaintext of the chunk, verified against its ID. A missing
// chunk yields an error wrapping blob.ErrNotFound; a damaged one, an error
// wrapping ErrCorrupt.
func (s *Store) Get(ctx context.Context, id ID) ([]byte, error) {
	obj, err := s.b.Get(ctx, objectName(id))
	if err != nil {
		return nil, fmt.Errorf("chunk: get %s: %w", id, err)
	}
	return s.codec.decode(id, obj)
}

// GetInto is Get with caller-owned memory: the plaintext is written into
// dst's storage when its capacity suffices (else allocated), and the
// stored object is read into *scratch, which is grown as needed and kept
// for the next call. The result is valid until dst is reused.
func (s *Store) GetInto(ctx context.Context, id ID, dst []byte, scratch *[]byte) ([]byte, error) {
	obj, err := blob.GetAppend(ctx, s.b, objectName(id), (*scratch)[:0])
	if err != nil {
		return nil, fmt.Errorf("chunk: get %s: %w", id, err)
	}
	*scratch = obj
	return s.codec.decodeInto(id, obj, dst)
}

// Has reports whether a chunk with the ID is stored, without verifying it.
func (s *Store) Has(ctx context.Context, id ID) (bool, error) {
	_, err := s.b.Stat(ctx, objectName(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, blob.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("chunk: stat %s: %w", id, err)
}

// Delete removes the chunk; deleting a missing chunk is not an error.
func (s *Store) Delete(ctx context.Context, id ID) error {
	if err := s.b.Delete(ctx, objectName(id)); err != nil {
		return fmt.Errorf("chunk: delete %s: %w", id, err)
	}
	return nil
}

// List calls fn with the ID of every stored chunk, in no particular order,
// skipping objects under "chunks/" whose names are not chunk names. An error
// from fn stops the listing and List returns it.
func (s *Store) List(ctx context.Context, fn func(ID) error) error {
	var fnErr error
	err := s.b.List(ctx, prefix, func(name string) error {
		if id, ok := parseObjectName(name); ok {
			fnErr = fn(id)
			return fnErr
		}
		return nil
	})
	if err != nil && fnErr != nil && errors.Is(err, fnErr) {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("chunk: list: %w", err)
	}
	return nil
}

// Batch puts chunks whose durability is settled together by Commit (see
// blob.Batch): none of them is visible, and so none can be deduplicated
// against, before Commit returned. A Batch is used by one goroutine at a
// time; several batches may run at once.
type Batch struct {
	s    *Store
	b    blob.Batch
	seen map[ID]bool
	obj  []byte // the last object encoded, its storage reused by the next
	// found: since the last Commit, a chunk was found stored, possibly
	// by another batch whose Commit has not made it durable yet.
	found bool
}

// objectAlign: the objects a batch encodes start at this alignment, with
// spare capacity up to a multiple of it, so that a backend writing with
// O_DIRECT can write them from where they are instead of copying them.
const objectAlign = 4096

// alignedBuffer returns an empty slice starting at an objectAlign
// boundary, with room for at least n bytes rounded up to objectAlign.
func alignedBuffer(n int) []byte {
	n = (n + objectAlign - 1) / objectAlign * objectAlign
	b := make([]byte, n+objectAlign)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % objectAlign); r != 0 {
		off = objectAlign - r
	}
	return b[off : off : off+n]
}

// NewBatch starts a batch.
func (s *Store) NewBatch() *Batch {
	return &Batch{s: s, b: blob.NewBatch(s.b), seen: map[ID]bool{}}
}

// Put is Store.Put within the batch.
func (b *Batch) Put(ctx context.Context, data []byte) (ID, bool, error) {
	if len(data) > MaxSize {
		return ID{}, false, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(data), MaxSize)
	}
	id := Sum(data)
	if b.seen[id] {
		return id, false, nil
	}
	switch has, err := b.s.Has(ctx, id); {
	case err != nil:
		return id, false, err
	case has:
		b.found = true
		return id, false, nil
	}
	if need := maxEncoded(len(data)); cap(b.obj) < need {
		b.obj = alignedBuffer(need)
	}
	b.obj = b.s.codec.encodeInto(b.obj, data) // Put does not retain it
	if err := b.b.Put(ctx, objectName(id), b.obj); err != nil {
		return id, false, fmt.Errorf("chunk: put %s: %w", id, err)
	}
	b.seen[id] = true
	return id, true, nil
}

// Len is the number of chunks written since the last Commit.
func (b *Batch) Len() int { return len(b.seen) }

// Commit makes durable and visible the batch's chunks, and the chunks it
// found stored (which another batch may still be committing).
func (b *Batch) Commit(ctx context.Context) error {
	if err := b.b.Commit(ctx); err != nil {
		return fmt.Errorf("chunk: commit: %w", err)
	}
	if b.found {
		if err := blob.Sync(ctx, b.s.b); err != nil {
			return fmt.Errorf("chunk: commit: %w", err)
		}
	}
	clear(b.seen)
	b.found = false
	return nil
}

// Abort discards the chunks written since the last Commit.
func (b *Batch) Abort() {
	b.b.Abort()
	clear(b.seen)
	b.found = false
}
