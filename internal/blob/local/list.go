package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/snapstack/snapstack/internal/blob"
)

// List calls fn for every object whose name begins with prefix, walking only
// the directories that can hold such names. Dot files (temporary files) are
// skipped.
func (s *Store) List(ctx context.Context, prefix string, fn func(name string) error) error {
	if err := blob.ValidatePrefix(prefix); err != nil {
		return fmt.Errorf("blob/local: list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob/local: list %q: %w", prefix, err)
	}
	// Start at the deepest directory named completely by the prefix.
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	var fnErr error
	err := s.walk(ctx, start, func(name, _ string, d fs.DirEntry) (bool, error) {
		switch {
		case strings.HasPrefix(d.Name(), "."):
			return false, nil
		case d.IsDir():
			// Descend only where names can still begin with prefix.
			dir := name + "/"
			return strings.HasPrefix(dir, prefix) || strings.HasPrefix(prefix, dir), nil
		case d.Type().IsRegular() && strings.HasPrefix(name, prefix):
			fnErr = fn(name)
			return false, fnErr
		}
		return false, nil
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fmt.Errorf("blob/local: list %q: %w", prefix, err)
	}
	return nil
}

// Sweep removes the temporary files left by Puts interrupted by a crash,
// sparing those of Puts in progress in this Store, and reports how many it
// removed. New calls it; call it again after recovering from I/O errors.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	removed := 0
	err := s.walk(ctx, ".", func(_, p string, d fs.DirEntry) (bool, error) {
		base := d.Name()
		if !strings.HasPrefix(base, tmpPrefix) || !d.Type().IsRegular() {
			return !strings.HasPrefix(base, "."), nil
		}
		if _, busy := s.inflight.Load(p); busy {
			return false, nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		removed++
		return false, nil
	})
	if err != nil {
		return removed, fmt.Errorf("blob/local: sweep: %w", err)
	}
	return removed, nil
}

// walk visits the tree below the slash-separated directory start (relative to
// the root), calling visit for every entry with its slash-separated name
// relative to the root and its file system path; for a directory, visit
// reports whether to descend into it. A missing start directory is an empty
// tree, and entries vanishing during the walk (concurrent Deletes) are
// skipped.
func (s *Store) walk(ctx context.Context, start string, visit func(name, p string, d fs.DirEntry) (bool, error)) error {
	base := s.path(start)
	return filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == base {
			if !d.IsDir() {
				return filepath.SkipAll // the prefix's directory is an object
			}
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		descend, err := visit(filepath.ToSlash(rel), p, d)
		if err != nil {
			return err
		}
		if d.IsDir() && !descend {
			return filepath.SkipDir
		}
		return nil
	})
}
