// Package atomicfile replaces files so that readers, and a restart after a
// crash or power loss, see the old content or the new one, never a mix,
// and the new content is durable when Write returns.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrNotDurable wraps the error of Write's final directory fsync: path
// already holds the new content, but a crash may still bring back the old
// one. Any other error of Write leaves path as it was.
var ErrNotDurable = errors.New("atomicfile: replaced, but not durably")

// Write replaces path with data: a temporary file in the same directory
// (".tmp-" prefix: callers listing the directory skip such names), fsync,
// rename over path, fsync of the directory.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	err = errors.Join(werr, f.Chmod(perm), f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("%w: %w", ErrNotDurable, err)
	}
	return nil
}

// SyncDir fsyncs a directory, making its entries (creations, renames,
// removals) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
