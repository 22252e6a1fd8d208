package blobtest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/snapstack/snapstack/internal/blob"
)

// ErrInjected is the error returned by faults set with Fail and FailAfter.
var ErrInjected = errors.New("blobtest: injected fault")

// Op names a method of blob.Backend.
type Op int

// The methods of blob.Backend.
const (
	OpPut Op = iota
	OpGet
	OpStat
	OpList
	OpDelete
	numOps
)

var opNames = [numOps]string{"Put", "Get", "Stat", "List", "Delete"}

func (o Op) String() string {
	if o >= 0 && o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// A Fault decides the outcome of one call: it receives the name (the prefix
// for List) and returns nil to let the call proceed, or the error to return.
type Fault func(name string) error

// Faulty decorates a blob.Backend with injectable failures, call counters and
// in-place corruption of stored objects. It is safe for concurrent use.
//
// For each method a "before" fault runs first; when it returns an error the
// call fails without reaching the wrapped backend. An "after" fault runs once
// the wrapped backend has succeeded and replaces the result with its error,
// modelling an operation that took effect although the caller saw a failure
// (a lost response).
type Faulty struct {
	inner blob.Backend

	mu     sync.Mutex
	before [numOps]Fault
	after  [numOps]Fault
	calls  [numOps]int
}

var _ blob.Backend = (*Faulty)(nil)

// NewFaulty wraps inner. With no faults set, Faulty passes every call through.
func NewFaulty(inner blob.Backend) *Faulty {
	return &Faulty{inner: inner}
}

// Inner returns the wrapped backend, which bypasses faults and counters.
func (f *Faulty) Inner() blob.Backend { return f.inner }

// SetFault installs fault to run before every call of op; nil removes it.
func (f *Faulty) SetFault(op Op, fault Fault) {
	f.mu.Lock()
	f.before[op] = fault
	f.mu.Unlock()
}

// SetFaultAfter installs fault to run after every successful call of op;
// nil removes it.
func (f *Faulty) SetFaultAfter(op Op, fault Fault) {
	f.mu.Lock()
	f.after[op] = fault
	f.mu.Unlock()
}

// Fail makes every call of op fail with err (ErrInjected if err is nil)
// without reaching the wrapped backend.
func (f *Faulty) Fail(op Op, err error) {
	if err == nil {
		err = ErrInjected
	}
	f.SetFault(op, func(string) error { return err })
}

// FailAfter makes every call of op take effect and then report err
// (ErrInjected if err is nil).
func (f *Faulty) FailAfter(op Op, err error) {
	if err == nil {
		err = ErrInjected
	}
	f.SetFaultAfter(op, func(string) error { return err })
}

// Clear removes every fault. Counters are kept.
func (f *Faulty) Clear() {
	f.mu.Lock()
	f.before = [numOps]Fault{}
	f.after = [numOps]Fault{}
	f.mu.Unlock()
}

// Calls reports how many times op was called, including failed calls.
func (f *Faulty) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// ResetCalls sets every counter to zero.
func (f *Faulty) ResetCalls() {
	f.mu.Lock()
	f.calls = [numOps]int{}
	f.mu.Unlock()
}

// Corrupt replaces the object stored under name by mutate's result, bypassing
// faults and counters. mutate may modify its argument in place.
func (f *Faulty) Corrupt(ctx context.Context, name string, mutate func(obj []byte) []byte) error {
	obj, err := f.inner.Get(ctx, name)
	if err != nil {
		return err
	}
	return f.inner.Put(ctx, name, mutate(obj))
}

// FlipBit inverts bit number bit (bit%8 of byte bit/8) of the object stored
// under name.
func (f *Faulty) FlipBit(ctx context.Context, name string, bit int) error {
	return f.Corrupt(ctx, name, func(obj []byte) []byte {
		if bit >= 0 && bit/8 < len(obj) {
			obj[bit/8] ^= 1 << (bit % 8)
		}
		return obj
	})
}

// enter counts a call of op and runs its before fault.
func (f *Faulty) enter(op Op, name string) error {
	f.mu.Lock()
	f.calls[op]++
	fault := f.before[op]
	f.mu.Unlock()
	if fault != nil {
		return fault(name)
	}
	return nil
}

// exit runs the after fault of op if the wrapped call succeeded.
func (f *Faulty) exit(op Op, name string, err error) error {
	if err != nil {
		return err
	}
	f.mu.Lock()
	fault := f.after[op]
	f.mu.Unlock()
	if fault != nil {
		return fault(name)
	}
	return nil
}

// Put implements blob.Backend.
func (f *Faulty) Put(ctx context.Context, name string, data []byte) error {
	if err := f.enter(OpPut, name); err != nil {
		return err
	}
	return f.exit(OpPut, name, f.inner.Put(ctx, name, data))
}

// Get implements blob.Backend.
func (f *Faulty) Get(ctx context.Context, name string) ([]byte, error) {
	if err := f.enter(OpGet, name); err != nil {
		return nil, err
	}
	data, err := f.inner.Get(ctx, name)
	if err = f.exit(OpGet, name, err); err != nil {
		return nil, err
	}
	return data, nil
}

// Stat implements blob.Backend.
func (f *Faulty) Stat(ctx context.Context, name string) (int64, error) {
	if err := f.enter(OpStat, name); err != nil {
		return 0, err
	}
	size, err := f.inner.Stat(ctx, name)
	if err = f.exit(OpStat, name, err); err != nil {
		return 0, err
	}
	return size, nil
}

// List implements blob.Backend.
func (f *Faulty) List(ctx context.Context, prefix string, fn func(name string) error) error {
	if err := f.enter(OpList, prefix); err != nil {
		return err
	}
	return f.exit(OpList, prefix, f.inner.List(ctx, prefix, fn))
}

// Delete implements blob.Backend.
func (f *Faulty) Delete(ctx context.Context, name string) error {
	if err := f.enter(OpDelete, name); err != nil {
		return err
	}
	return f.exit(OpDelete, name, f.inner.Delete(ctx, name))
}
