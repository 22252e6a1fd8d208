// Package blob defines the contract of an object store holding immutable,
// named objects, and the naming rules every backend enforces.
//
// A backend is a flat key space of whole objects: an object is written in one
// Put and read in one Get; there are no partial reads, appends or renames.
// The upper layers (the chunk store, manifests) rely on the following
// guarantees, which the conformance suite in package blobtest checks:
//
//   - Atomicity: a reader sees either no object, the previous object or the
//     complete new object under a name, never a partial one.
//   - Durability: once Put or Delete returns nil, the change survives a crash
//     of the process or of the machine.
//   - Ownership: Put does not retain data after it returns, and the slice
//     returned by Get belongs to the caller.
//   - Cancellation: a call made with a done context returns an error.
//
// # Names
//
// Names are slash-separated paths such as "chunks/ab/abcdef…". The rules are
// the same for every backend, so that a name valid for one is valid for all:
//
//   - 1 to MaxNameLen bytes of visible ASCII (0x21 through 0x7E; no space,
//     no control characters, no bytes >= 0x80);
//   - no leading or trailing "/" and no empty segment ("a//b");
//   - every segment is at most MaxSegmentLen bytes and does not begin with
//     "." (this rules out "." and ".." and reserves dot names, such as
//     temporary files, for backends' own use).
//
// Names are case sensitive: "a" and "A" are different objects.
// A name that is an object must not also be used as a directory of another
// object ("a" and "a/b"): backends that map names onto a file system cannot
// hold both, and the behaviour is backend specific.
//
// Invalid names are rejected with an error wrapping ErrInvalidName.
package blob

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Backend is an object store holding immutable named objects.
// Implementations are safe for concurrent use.
type Backend interface {
	// Put stores data under name atomically (readers never see a partial
	// object) and durably when it returns nil. Putting an existing name
	// replaces it atomically.
	Put(ctx context.Context, name string, data []byte) error
	// Get returns the whole object or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) ([]byte, error)
	// Stat reports the size, or ErrNotFound.
	Stat(ctx context.Context, name string) (int64, error)
	// List calls fn for every name with prefix (order unspecified, on the
	// caller's goroutine); fn returning an error stops the listing and List
	// returns it. Objects put or deleted during the listing may or may not
	// be reported. The prefix is validated with ValidatePrefix.
	List(ctx context.Context, prefix string, fn func(name string) error) error
	// Delete removes name; deleting a missing name is not an error.
	Delete(ctx context.Context, name string) error
}

var (
	// ErrNotFound reports that no object exists under a name.
	ErrNotFound = errors.New("blob: not found")
	// ErrInvalidName reports a name or prefix breaking the naming rules.
	ErrInvalidName = errors.New("blob: invalid name")
)

// Limits on names, chosen so that every backend can store every valid name:
// S3 keys are at most 1024 bytes and file names at most 255 bytes.
const (
	MaxNameLen    = 1024
	MaxSegmentLen = 255
)

// ValidateName returns nil if name follows the naming rules of the package
// documentation, and an error wrapping ErrInvalidName otherwise.
func ValidateName(name string) error {
	if name == "" {
		return invalid(name, "empty name")
	}
	return check(name, false)
}

// ValidatePrefix returns nil if prefix can begin a valid name, and an error
// wrapping ErrInvalidName otherwise. The empty prefix (every object) is
// valid, and so is a prefix ending in "/" or in a partial segment, such as
// "chunks/" or "chunks/a".
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return check(prefix, true)
}

// check applies the naming rules to s. For a prefix, the last segment may be
// empty (the prefix ends with "/").
func check(s string, prefix bool) error {
	if len(s) > MaxNameLen {
		return invalid(s, fmt.Sprintf("longer than %d bytes", MaxNameLen))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return invalid(s, fmt.Sprintf("byte %#x at offset %d is not visible ASCII", c, i))
		}
	}
	rest := s
	for {
		seg, tail, more := strings.Cut(rest, "/")
		last := !more
		switch {
		case seg == "" && !(last && prefix):
			return invalid(s, "empty segment")
		case len(seg) > MaxSegmentLen:
			return invalid(s, fmt.Sprintf("segment longer than %d bytes", MaxSegmentLen))
		case strings.HasPrefix(seg, "."):
			return invalid(s, fmt.Sprintf("segment %q begins with a dot", seg))
		}
		if last {
			return nil
		}
		rest = tail
	}
}

func invalid(name, reason string) error {
	return fmt.Errorf("%w %q: %s", ErrInvalidName, name, reason)
}

// Batch collects Puts whose durability is settled together, which is much
// cheaper than one fsync per object on a local disk. Objects put in a batch
// are invisible (Get, Stat and List do not see them) until Commit starts,
// may become visible during Commit, and are all durable once it returns
// nil. After a crash before Commit none of them exists. So a writer that
// relies on an object it found but did not write itself (deduplication)
// must call Sync before it records that reliance durably. A Batch is used
// by one goroutine at a time.
type Batch interface {
	Put(ctx context.Context, name string, data []byte) error
	// Commit makes every object put so far visible and durable.
	Commit(ctx context.Context) error
	// Abort discards the objects put since the last Commit.
	Abort()
}

// AppendGetter is implemented by backends that can read an object into
// the caller's memory.
type AppendGetter interface {
	// GetAppend appends the whole object to buf and returns the result,
	// or an error wrapping ErrNotFound.
	GetAppend(ctx context.Context, name string, buf []byte) ([]byte, error)
}

// GetAppend appends the object to buf with b's GetAppend when it has one,
// else with Get and a copy.
func GetAppend(ctx context.Context, b Backend, name string, buf []byte) ([]byte, error) {
	if ag, ok := b.(AppendGetter); ok {
		return ag.GetAppend(ctx, name, buf)
	}
	obj, err := b.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	return append(buf, obj...), nil
}

// Batcher is implemented by backends that have a cheaper Batch than one
// Put per object.
type Batcher interface {
	NewBatch() Batch
}

// Syncer is implemented by backends whose batches make objects visible
// before they are durable.
type Syncer interface {
	// Sync makes durable every object that was visible when Sync was
	// called.
	Sync(ctx context.Context) error
}

// Sync is b's Sync when it has one; other backends' visible objects are
// durable already.
func Sync(ctx context.Context, b Backend) error {
	if s, ok := b.(Syncer); ok {
		return s.Sync(ctx)
	}
	return nil
}

// NewBatch returns b's own Batch when it has one, else a Batch whose Put
// is b.Put (each object durable at once; Commit does nothing more).
func NewBatch(b Backend) Batch {
	if bb, ok := b.(Batcher); ok {
		return bb.NewBatch()
	}
	return direct{b}
}

type direct struct{ b Backend }

func (d direct) Put(ctx context.Context, name string, data []byte) error {
	return d.b.Put(ctx, name, data)
}
func (d direct) Commit(context.Context) error { return nil }
func (d direct) Abort()                       {}
