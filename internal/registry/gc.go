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
// Manifest PUTs, and blob reads, mounts and upload commits, wait while
// it runs (it reads every linked manifest: 35 ms for 2,000 images on the
// development machine, BenchmarkCollect):
// a manifest checks its blobs and is linked in one step with respect to
// Collect, so a blob a stored manifest names is never removed. If a
// linked manifest cannot be read or parsed, nothing is removed.
func (g *Registry) Collect(ctx context.Context) (Collected, error) {
	return g.st.collect(ctx, g.opts.BlobGrace)
}

func (s *store) collect(ctx context.Context, grace time.Duration) (Collected, error) {
	var c Collected
	s.gc.Lock()
	defer s.gc.Unlock()
	live, err := s.liveBlobs(ctx)
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
// repository (and of the manifests tags name) and of everything they
// name. The caller holds s.gc.
func (s *store) liveBlobs(ctx context.Context) (map[string]bool, error) {
	live := map[string]bool{}
	parsed := map[string]bool{} // manifests whose references are marked
	repos, err := listNames(filepath.Join(s.root, "repos"))
	if err != nil {
		return nil, err
	}
	for _, repo := range repos {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dir := filepath.Join(s.root, "repos", repo)
		links, err := listNames(filepath.Join(dir, "manifests"))
		if err != nil {
			return nil, err
		}
		queue := make([]string, 0, len(links))
		for _, l := range links {
			queue = append(queue, "sha256:"+l)
		}
		tags, err := listNames(filepath.Join(dir, "tags"))
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			b, err := os.ReadFile(filepath.Join(dir, "tags", t))
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted since the listing
			}
			if err != nil {
				return nil, err
			}
			queue = append(queue, strings.TrimSpace(string(b)))
		}
		// An index's children are manifests too: what they name is needed
		// while the index is, linked or not.
		for i := 0; i < len(queue); i++ {
			d := queue[i]
			if !validDigest(d) || parsed[d] {
				continue
			}
			parsed[d] = true
			live[d] = true
			body, err := os.ReadFile(s.blobPath(d))
			if errors.Is(err, fs.ErrNotExist) {
				continue // a link without its manifest names nothing
			}
			if err != nil {
				return nil, err
			}
			err = manifestReferences(body, func(ref string, manifest bool) {
				live[ref] = true
				if manifest {
					queue = append(queue, ref)
				}
			})
			if err != nil {
				return nil, fmt.Errorf("manifest %s of %s: %w", d, repo, err)
			}
		}
	}
	return live, nil
}

// manifestReferences calls fn with every digest a manifest names: any
// "digest" or "blobSum" string anywhere in it, so that the blobs of every
// format the registry accepts are kept (image manifests, indexes, Docker
// schema 1, artifact manifests), whatever Collect knows of them. The
// entries of a "manifests" list (an index's children) are reported as
// manifests, whose own references count too.
func manifestReferences(body []byte, fn func(digest string, manifest bool)) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	var walk func(v any, inManifests bool)
	walk = func(v any, inManifests bool) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && (k == "digest" || k == "blobSum") {
					fn(s, inManifests)
					continue
				}
				walk(e, k == "manifests")
			}
		case []any:
			for _, e := range x {
				walk(e, inManifests)
			}
		}
	}
	walk(v, false)
	return nil
}

// touchBlob marks a blob as in use now (see Collect) and reports whether
// it exists. A blob whose times cannot be set (a file of another owner)
// is reported as it is, untouched. The caller holds s.gc for reading.
func (s *store) touchBlob(digest string) (bool, error) {
	now := s.now()
	err := os.Chtimes(s.blobPath(digest), now, now)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		_, err = os.Stat(s.blobPath(digest))
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
	}
	return err == nil, err
}
