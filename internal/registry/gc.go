package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultBlobGrace is Options.BlobGrace when unset: as long as an idle
// upload session is kept, so that a push may take as long between its
// blobs and its manifest as between two chunks of one blob.
const DefaultBlobGrace = uploadTTL

// Collected is what Collect removed.
type Collected struct {
	Blobs int   // blobs removed: layers, configs and manifest bodies
	Bytes int64 // their size
}

// Collect removes the blobs that no manifest of any repository needs (a
// manifest is needed while a repository links it: until it is deleted by
// digest; a tag alone moving away from it does not unlink it), once no
// request has uploaded, mounted or read them for Options.BlobGrace: a
// push stores its blobs before the manifest that names them, and checks
// with HEAD for the ones it skips.
//
// Manifest PUTs wait while it runs (a manifest checks its blobs and is
// linked in one step with respect to Collect), so a blob a stored
// manifest names is never removed. If a linked manifest cannot be read or
// parsed, nothing is removed.
func (g *Registry) Collect(ctx context.Context) (Collected, error) {
	return g.st.collect(ctx, g.opts.BlobGrace)
}

func (s *store) collect(ctx context.Context, grace time.Duration) (Collected, error) {
	var c Collected
	s.gc.Lock()
	defer s.gc.Unlock()
	live, err := s.liveBlobs()
	if err != nil {
		return c, fmt.Errorf("registry: collect: %w", err)
	}
	dir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return c, fmt.Errorf("registry: collect: %w", err)
	}
	cutoff := s.now().Add(-grace)
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		// A name is a digest, or a temporary file a crash left behind.
		if live["sha256:"+e.Name()] {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return c, fmt.Errorf("registry: collect: %w", err)
		}
		c.Blobs++
		c.Bytes += fi.Size()
	}
	return c, nil
}

// liveBlobs returns the digests of the linked manifests of every
// repository and of everything they name. The caller holds s.gc.
func (s *store) liveBlobs() (map[string]bool, error) {
	live := map[string]bool{}
	repos, err := listNames(filepath.Join(s.root, "repos"))
	if err != nil {
		return nil, err
	}
	for _, repo := range repos {
		dir := filepath.Join(s.root, "repos", repo)
		links, err := listNames(filepath.Join(dir, "manifests"))
		if err != nil {
			return nil, err
		}
		digests := make([]string, 0, len(links))
		for _, l := range links {
			digests = append(digests, "sha256:"+l)
		}
		tags, err := listNames(filepath.Join(dir, "tags"))
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			b, err := os.ReadFile(filepath.Join(dir, "tags", t))
			if err != nil {
				return nil, err
			}
			digests = append(digests, strings.TrimSpace(string(b)))
		}
		// An index's children are manifests too: what they name is needed
		// while the index is, linked or not.
		for i := 0; i < len(digests); i++ {
			d := digests[i]
			if !validDigest(d) || live[d] {
				continue
			}
			live[d] = true
			body, err := os.ReadFile(s.blobPath(d))
			if errors.Is(err, fs.ErrNotExist) {
				continue // a link without its manifest names nothing
			}
			if err != nil {
				return nil, err
			}
			var m manifestRefs
			if err := json.Unmarshal(body, &m); err != nil {
				return nil, fmt.Errorf("manifest %s of %s: %w", d, repo, err)
			}
			if m.Config != nil {
				live[m.Config.Digest] = true
			}
			for _, l := range m.Layers {
				live[l.Digest] = true
			}
			for _, c := range m.Manifests {
				digests = append(digests, c.Digest)
			}
		}
	}
	return live, nil
}

// touchBlob marks a blob as in use now (see Collect) and reports whether
// it exists. The caller holds s.gc for reading.
func (s *store) touchBlob(digest string) (bool, error) {
	now := s.now()
	err := os.Chtimes(s.blobPath(digest), now, now)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
