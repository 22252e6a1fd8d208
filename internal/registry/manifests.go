package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
)

// resolve returns the digest a reference (tag or digest) names in a
// repository, and the manifest's media type.
func (g *Registry) resolve(name, ref string) (digest, mediaType string, err error) {
	digest = ref
	if !validDigest(ref) {
		b, err := os.ReadFile(g.st.tagPath(name, ref))
		if err != nil {
			return "", "", err
		}
		digest = strings.TrimSpace(string(b))
	}
	mt, err := os.ReadFile(g.st.manifestPath(name, digest))
	if err != nil {
		return "", "", err
	}
	return digest, string(mt), nil
}

// manifest serves /v2/<name>/manifests/<reference>.
func (g *Registry) manifest(w http.ResponseWriter, r *http.Request, name, ref string) *regError {
	if !validDigest(ref) && !validTag(ref) {
		return errTagInvalid.with("invalid tag or digest")
	}
	switch r.Method {
	case http.MethodPut:
		return g.putManifest(w, r, name, ref)
	case http.MethodDelete:
		return g.deleteManifest(w, r, name, ref)
	case http.MethodGet, http.MethodHead:
	default:
		return errUnsupported
	}
	digest, mt, err := g.resolve(name, ref)
	if errors.Is(err, fs.ErrNotExist) {
		return errManifestUnknown
	}
	if err != nil {
		return g.fail(r, err)
	}
	body, err := os.ReadFile(g.st.blobPath(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return errManifestUnknown // deleted and collected since resolve
	}
	if err != nil {
		return g.fail(r, err)
	}
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("ETag", `"`+digest+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
	return nil
}

// manifestRefs are the fields of image manifests and indexes that name
// other content.
type manifestRefs struct {
	MediaType string `json:"mediaType"`
	Config    *struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		Digest string   `json:"digest"`
		URLs   []string `json:"urls"`
	} `json:"layers"`
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
}

func (g *Registry) putManifest(w http.ResponseWriter, r *http.Request, name, ref string) *regError {
	body, err := io.ReadAll(io.LimitReader(r.Body, g.opts.MaxManifest+1))
	if err != nil {
		return errManifestInvalid.with("the manifest could not be read")
	}
	if int64(len(body)) > g.opts.MaxManifest {
		return errSizeInvalid
	}
	var m manifestRefs
	if err := json.Unmarshal(body, &m); err != nil {
		return errManifestInvalid.with("the manifest is not a JSON object")
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "" {
		mt = m.MediaType
	}
	if mt == "" || (m.MediaType != "" && m.MediaType != mt) {
		return errManifestInvalid.with("the manifest media type is missing or does not match Content-Type")
	}
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if validDigest(ref) && ref != digest {
		return errDigestInvalid
	}
	// From the check of its blobs to its link, Collect waits.
	g.st.gc.RLock()
	defer g.st.gc.RUnlock()
	if e := g.checkRefs(name, &m); e != nil {
		return e
	}
	if err := g.st.putBlob(digest, body); err != nil {
		return g.fail(r, err)
	}
	if err := writeAtomic(g.st.manifestPath(name, digest), []byte(mt)); err != nil {
		return g.fail(r, err)
	}
	if !validDigest(ref) {
		if err := writeAtomic(g.st.tagPath(name, ref), []byte(digest)); err != nil {
			return g.fail(r, err)
		}
	}
	w.Header().Set("Location", "/v2/"+name+"/manifests/"+digest)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// checkRefs requires the config and layers (except foreign layers with
// URLs) of an image manifest to be stored blobs, and the children of an
// index to be manifests of the repository.
func (g *Registry) checkRefs(name string, m *manifestRefs) *regError {
	var blobs []string
	if m.Config != nil {
		blobs = append(blobs, m.Config.Digest)
	}
	for _, l := range m.Layers {
		if len(l.URLs) == 0 {
			blobs = append(blobs, l.Digest)
		}
	}
	for _, d := range blobs {
		if !validDigest(d) {
			return errManifestInvalid.with("the manifest names a malformed digest")
		}
		if _, err := g.st.blobSize(d); err != nil {
			return errManifestBlobUnknown.with("blob unknown: " + d)
		}
	}
	for _, c := range m.Manifests {
		if !validDigest(c.Digest) {
			return errManifestInvalid.with("the index names a malformed digest")
		}
		if _, err := os.Stat(g.st.manifestPath(name, c.Digest)); err != nil {
			return errManifestBlobUnknown.with("manifest unknown: " + c.Digest)
		}
	}
	return nil
}

// deleteManifest removes a tag, or a manifest with every tag naming it.
func (g *Registry) deleteManifest(w http.ResponseWriter, r *http.Request, name, ref string) *regError {
	if !validDigest(ref) {
		err := os.Remove(g.st.tagPath(name, ref))
		if errors.Is(err, fs.ErrNotExist) {
			return errManifestUnknown
		}
		if err != nil {
			return g.fail(r, err)
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	if _, err := os.Stat(g.st.manifestPath(name, ref)); err != nil {
		return errManifestUnknown
	}
	tags, err := listNames(g.st.repoDir(name) + "/tags")
	if err != nil {
		return g.fail(r, err)
	}
	for _, t := range tags {
		if b, err := os.ReadFile(g.st.tagPath(name, t)); err == nil && bytes.Equal(bytes.TrimSpace(b), []byte(ref)) {
			if err := os.Remove(g.st.tagPath(name, t)); err != nil {
				return g.fail(r, err)
			}
		}
	}
	if err := os.Remove(g.st.manifestPath(name, ref)); err != nil {
		return g.fail(r, err)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// tagList serves GET /v2/<name>/tags/list?n=&last=.
func (g *Registry) tagList(w http.ResponseWriter, r *http.Request, name string) *regError {
	if _, err := os.Stat(g.st.repoDir(name)); err != nil {
		return errNameUnknown
	}
	tags, err := listNames(g.st.repoDir(name) + "/tags")
	if err != nil {
		return g.fail(r, err)
	}
	page, next := paginate(tags, r.URL.Query())
	if next != "" {
		w.Header().Set("Link", "</v2/"+name+"/tags/list?"+next+`>; rel="next"`)
	}
	return writeJSON(w, map[string]any{"name": name, "tags": page})
}

// catalog serves GET /v2/_catalog?n=&last=.
func (g *Registry) catalog(w http.ResponseWriter, r *http.Request) *regError {
	dirs, err := listNames(g.st.root + "/repos")
	if err != nil {
		return g.fail(r, err)
	}
	names := make([]string, 0, len(dirs))
	for _, d := range dirs {
		names = append(names, strings.ReplaceAll(d, "+", "/"))
	}
	sort.Strings(names)
	page, next := paginate(names, r.URL.Query())
	if next != "" {
		w.Header().Set("Link", "</v2/_catalog?"+next+`>; rel="next"`)
	}
	return writeJSON(w, map[string]any{"repositories": page})
}

// paginate applies n (page size) and last (exclusive start) to a sorted
// list; next is the query of the following page, "" on the last one.
func paginate(all []string, q url.Values) (page []string, next string) {
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(all, last)
		if i < len(all) && all[i] == last {
			i++
		}
		all = all[i:]
	}
	page = all
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n >= 0 && n < len(all) {
		page = all[:n]
		if n > 0 {
			next = url.Values{"n": {strconv.Itoa(n)}, "last": {page[n-1]}}.Encode()
		}
	}
	if page == nil {
		page = []string{}
	}
	return page, next
}

func writeJSON(w http.ResponseWriter, v any) *regError {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
	return nil
}
