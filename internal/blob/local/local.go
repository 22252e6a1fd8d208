// Package local is a blob.Backend storing each object as a file under a
// directory, the name's segments becoming subdirectories.
//
// Put writes the object to a temporary file in the destination directory,
// fsyncs it, renames it over the final name and fsyncs the directory, so an
// acknowledged Put survives kill -9 and power loss, and readers never see a
// partial object (rename is atomic). Directories created on the way are made
// durable too: the first time this Store uses a directory it fsyncs the
// directory's parent. Delete fsyncs the directory after unlinking.
//
// Temporary files are named ".tmp-<random>"; since blob names cannot have a
// segment beginning with a dot, they never collide with objects, and List and
// Get never report them. Leftovers of a crash are removed by New and Sweep.
// Empty directories are left in place after Delete: removing them would race
// with concurrent Puts into the same directory.
//
// A directory must be used by one Store at a time: Sweep, and so New, would
// remove the temporary files of Puts in progress in another process.
// Objects are created with mode 0600 (snapshots hold private data).
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"github.com/snapstack/snapstack/internal/blob"
	"golang.org/x/sys/unix"
)

// tmpPrefix begins the names of temporary files.
const tmpPrefix = ".tmp-"

// Store is a blob.Backend on a local directory. It is safe for concurrent use.
type Store struct {
	root string

	dirs     sync.Map // slash-separated directory (relative to root) -> struct{}: exists and is durable
	inflight sync.Map // temporary file path -> struct{}: owned by a Put in progress

	group groupSync // file-system flushes shared by concurrent batch commits
}

var _ blob.Backend = (*Store)(nil)

// New opens the store rooted at dir, creating dir if needed, and removes the
// temporary files left by a crash.
func New(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob/local: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("blob/local: %w", err)
	}
	// The root may have just been created: make its entry durable.
	if err := syncDir(filepath.Dir(root)); err != nil {
		return nil, fmt.Errorf("blob/local: %w", err)
	}
	s := &Store{root: root}
	if _, err := s.Sweep(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the absolute path of the store's root directory.
func (s *Store) Dir() string { return s.root }

// path returns the file system path of a validated name or directory.
func (s *Store) path(name string) string {
	return filepath.Join(s.root, filepath.FromSlash(name))
}

// Put stores data under name: see the package documentation.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := begin(ctx, "put", name); err != nil {
		return err
	}
	dir := path.Dir(name)
	if err := s.ensureDir(dir); err != nil {
		return fmt.Errorf("blob/local: put %q: %w", name, err)
	}
	if err := s.write(s.path(dir), s.path(name), data); err != nil {
		return fmt.Errorf("blob/local: put %q: %w", name, err)
	}
	return nil
}

// write atomically and durably replaces the file final in directory dir.
func (s *Store) write(dir, final string, data []byte) (err error) {
	var (
		f   *os.File
		tmp string
	)
	for range 100 {
		tmp = filepath.Join(dir, tmpPrefix+strconv.FormatUint(rand.Uint64(), 36))
		s.inflight.Store(tmp, struct{}{}) // before creation: Sweep never sees it unregistered
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			break
		}
		s.inflight.Delete(tmp)
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	if err != nil {
		return err
	}
	defer s.inflight.Delete(tmp)
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(dir)
}

// ensureDir creates the slash-separated directory dir (relative to the root)
// and its ancestors, and makes their entries durable, once per Store.
func (s *Store) ensureDir(dir string) error {
	if dir == "." {
		return nil
	}
	if _, ok := s.dirs.Load(dir); ok {
		return nil
	}
	parent := path.Dir(dir)
	if err := s.ensureDir(parent); err != nil {
		return err
	}
	// Even if dir already exists, whoever created it may not have made its
	// entry durable yet (another goroutine, or a process killed since), so
	// the parent is synced in any case.
	if err := os.Mkdir(s.path(dir), 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		if fi, err := os.Stat(s.path(dir)); err != nil || !fi.IsDir() {
			return fmt.Errorf("%s is not a directory: %w", s.path(dir), syscall.ENOTDIR)
		}
	}
	if err := syncDir(s.path(parent)); err != nil {
		return err
	}
	s.dirs.Store(dir, struct{}{})
	return nil
}

// Get returns the object stored under name.
func (s *Store) Get(ctx context.Context, name string) ([]byte, error) {
	if err := begin(ctx, "get", name); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.path(name))
	if err != nil {
		return nil, fmt.Errorf("blob/local: get %q: %w", name, notFound(err))
	}
	return data, nil
}

// directAlign is the alignment of O_DIRECT buffers, offsets and lengths.
const directAlign = 4096

// GetAppend appends the object stored under name to buf (blob.AppendGetter).
// An object in the page cache is copied from there; one that is not (the
// common case for chunks, written with O_DIRECT) is read with O_DIRECT
// when buf's free space is aligned for it, so that a restore does not
// pay for filling the page cache with objects read once.
func (s *Store) GetAppend(ctx context.Context, name string, buf []byte) ([]byte, error) {
	if err := begin(ctx, "get", name); err != nil {
		return nil, err
	}
	p := s.path(name)
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("blob/local: get %q: %w", name, notFound(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = syscall.EISDIR
	}
	if err != nil {
		return nil, fmt.Errorf("blob/local: get %q: %w", name, notFound(err))
	}
	n, size := len(buf), int(fi.Size())
	padded := (size + directAlign - 1) / directAlign * directAlign
	buf = slices.Grow(buf, padded)
	dst := buf[n : n+size]
	done := 0
	if size > 0 {
		// RWF_NOWAIT: only what the page cache holds, without waiting.
		done, err = unix.Preadv2(int(f.Fd()), [][]byte{dst}, 0, unix.RWF_NOWAIT)
		if err != nil {
			done = 0
		}
	}
	if done == 0 && size > 0 && uintptr(unsafe.Pointer(&dst[0]))%directAlign == 0 {
		if df, derr := os.OpenFile(p, os.O_RDONLY|unix.O_DIRECT, 0); derr == nil {
			got, rerr := io.ReadAtLeast(df, buf[n:n+padded], size)
			df.Close()
			if rerr == nil && got == size {
				return buf[:n+size], nil
			}
		}
	}
	if _, err := f.ReadAt(dst[done:], int64(done)); err != nil {
		return nil, fmt.Errorf("blob/local: get %q: %w", name, err)
	}
	return buf[:n+size], nil
}

// Stat reports the size of the object stored under name.
func (s *Store) Stat(ctx context.Context, name string) (int64, error) {
	if err := begin(ctx, "stat", name); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.path(name))
	if err == nil && !fi.Mode().IsRegular() {
		err = blob.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("blob/local: stat %q: %w", name, notFound(err))
	}
	return fi.Size(), nil
}

// Delete removes the object stored under name, if any, durably.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := begin(ctx, "delete", name); err != nil {
		return err
	}
	p := s.path(name)
	fi, err := os.Lstat(p)
	if err != nil || fi.IsDir() {
		if err == nil || errors.Is(notFound(err), blob.ErrNotFound) {
			return nil // missing, or a directory, which is not an object
		}
		return fmt.Errorf("blob/local: delete %q: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob/local: delete %q: %w", name, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("blob/local: delete %q: %w", name, err)
	}
	return nil
}

// begin validates name and checks ctx, the common prologue of every call.
func begin(ctx context.Context, op, name string) error {
	if err := blob.ValidateName(name); err != nil {
		return fmt.Errorf("blob/local: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob/local: %s %q: %w", op, name, err)
	}
	return nil
}

// notFound maps the errors meaning "no such object" to one wrapping
// blob.ErrNotFound: a missing file, a directory in place of the object, or a
// file in place of one of its directories.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) {
		return fmt.Errorf("%w (%v)", blob.ErrNotFound, err)
	}
	return err
}

// syncDir fsyncs a directory, making the entries in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
