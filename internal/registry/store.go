package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/snapstack/snapstack/internal/atomicfile"
)

// The names of the distribution specification. Each is checked before it
// becomes part of a file path, so no request can leave the root directory.
var (
	nameRe   = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRe    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	digestRe = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	uploadRe = regexp.MustCompile(`^[a-f0-9]{32}$`)
)

func validName(s string) bool   { return len(s) <= 255 && nameRe.MatchString(s) }
func validTag(s string) bool    { return tagRe.MatchString(s) }
func validDigest(s string) bool { return digestRe.MatchString(s) }

var errBlobMissing = errors.New("registry: blob missing")

// store is the on-disk layout described in the package comment.
type store struct {
	root string
	// uploadLocks: upload ID -> *sync.Mutex (see lockUpload); an entry
	// goes when its upload is committed.
	uploadLocks sync.Map
	now         func() time.Time
	// gc excludes Collect (writer) from the requests that make a blob
	// needed (readers): a manifest PUT from the check of its blobs to its
	// link, and the uploads, mounts and reads that touch a blob.
	gc sync.RWMutex

	sweepMu   sync.Mutex
	lastSweep time.Time
}

// uploadTTL is how long an upload session may go without a request
// before it is removed: clients abandon uploads (a failed push, a
// cancelled snapshot), and nothing else would reclaim their space.
const uploadTTL = 24 * time.Hour

func openStore(root string, now func() time.Time) (*store, error) {
	for _, d := range []string{"blobs/sha256", "uploads", "repos"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	s := &store{root: root, now: now}
	s.sweepUploads()
	return s, nil
}

// sweepUploads removes the upload sessions left untouched for uploadTTL;
// it runs at open and then at most hourly, from newUpload.
func (s *store) sweepUploads() {
	s.sweepMu.Lock()
	now := s.now()
	if now.Sub(s.lastSweep) < time.Hour && !s.lastSweep.IsZero() {
		s.sweepMu.Unlock()
		return
	}
	s.lastSweep = now
	s.sweepMu.Unlock()
	ents, err := os.ReadDir(filepath.Join(s.root, "uploads"))
	if err != nil {
		return
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < uploadTTL {
			continue
		}
		unlock := s.lockUpload(e.Name())
		// Checked again under the upload's lock: a request may have
		// touched it meanwhile.
		if fi, err := os.Stat(s.uploadPath(e.Name())); err == nil && now.Sub(fi.ModTime()) >= uploadTTL {
			os.Remove(s.uploadPath(e.Name()))
		}
		unlock()
		s.uploadLocks.Delete(e.Name())
	}
}

func (s *store) blobPath(digest string) string {
	return filepath.Join(s.root, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func (s *store) uploadPath(id string) string { return filepath.Join(s.root, "uploads", id) }

func (s *store) repoDir(name string) string {
	return filepath.Join(s.root, "repos", strings.ReplaceAll(name, "/", "+"))
}

func (s *store) tagPath(name, tag string) string { return filepath.Join(s.repoDir(name), "tags", tag) }

func (s *store) manifestPath(name, digest string) string {
	return filepath.Join(s.repoDir(name), "manifests", strings.TrimPrefix(digest, "sha256:"))
}

// blobSize returns the size of a blob, errBlobMissing when absent.
func (s *store) blobSize(digest string) (int64, error) {
	fi, err := os.Stat(s.blobPath(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, errBlobMissing
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// newUpload creates an empty upload session.
func (s *store) newUpload() (string, error) {
	s.sweepUploads()
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	f, err := os.OpenFile(s.uploadPath(id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	return id, f.Close()
}

// lockUpload serialises the requests of one upload session: a PUT that
// commits must not hash the file while a PATCH still appends to it (the
// blob would then hold more than its digest says).
func (s *store) lockUpload(id string) func() {
	m, _ := s.uploadLocks.LoadOrStore(id, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// appendUpload appends r to an upload and returns its new size. When
// start >= 0 it must equal the current size.
func (s *store) appendUpload(id string, start int64, r io.Reader) (int64, error) {
	defer s.lockUpload(id)()
	f, err := os.OpenFile(s.uploadPath(id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if start >= 0 && start != fi.Size() {
		return fi.Size(), errRangeMismatch
	}
	n, err := io.Copy(f, r)
	return fi.Size() + n, err
}

var errRangeMismatch = errors.New("registry: range mismatch")

// uploadSize returns the size of an upload session.
func (s *store) uploadSize(id string) (int64, error) {
	fi, err := os.Stat(s.uploadPath(id))
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// commitUpload verifies an upload against digest and moves it into the
// blobs. ok is false (and the upload is kept) when the content does not
// match.
func (s *store) commitUpload(id, digest string) (ok bool, err error) {
	defer s.lockUpload(id)()
	p := s.uploadPath(id)
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err != nil {
		return false, err
	}
	if "sha256:"+hex.EncodeToString(h.Sum(nil)) != digest {
		return false, nil
	}
	defer s.uploadLocks.Delete(id)
	s.gc.RLock()
	defer s.gc.RUnlock()
	if ok, err := s.touchBlob(digest); ok || err != nil {
		// Stored already (the same bytes): never replace a blob that
		// images share.
		return err == nil, errors.Join(err, os.Remove(p))
	}
	if err := os.Rename(p, s.blobPath(digest)); err != nil {
		return false, err
	}
	if _, err := s.touchBlob(digest); err != nil { // the upload may have been idle for long
		return false, err
	}
	return true, atomicfile.SyncDir(filepath.Dir(s.blobPath(digest)))
}

// putBlob stores data (already known to hash to digest). The caller
// holds s.gc for reading.
func (s *store) putBlob(digest string, data []byte) error {
	if ok, err := s.touchBlob(digest); ok || err != nil {
		return err
	}
	return writeAtomic(s.blobPath(digest), data)
}

// writeAtomic writes data to path (creating its directory) atomically
// and durably.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}

// listNames returns the sorted names of the regular files in dir, skipping
// temporary files; a missing dir is an empty list.
func listNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}
