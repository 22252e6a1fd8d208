package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// blob serves GET/HEAD /v2/<name>/blobs/<digest> (with Range support).
func (g *Registry) blob(w http.ResponseWriter, r *http.Request, name, digest string) *regError {
	if !validDigest(digest) {
		return errDigestInvalid.with("unsupported or malformed digest")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodDelete:
		return errUnsupported.with("blob deletion is not supported")
	default:
		return errUnsupported
	}
	// A read marks the blob as in use (a push checks with HEAD for the
	// blobs it will not upload); the open file stays readable whatever
	// Collect does next.
	g.st.gc.RLock()
	if _, err := g.st.touchBlob(digest); err != nil {
		g.opts.Log.Warn("registry: touch blob", "digest", digest, "err", err)
	}
	f, err := os.Open(g.st.blobPath(digest))
	g.st.gc.RUnlock()
	if errors.Is(err, fs.ErrNotExist) {
		return errBlobUnknown
	}
	if err != nil {
		return g.fail(r, err)
	}
	defer f.Close()
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+digest+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

// upload serves /v2/<name>/blobs/uploads/[<id>]: POST starts a session
// (or finishes it at once with ?digest=, or mounts with ?mount=&from=),
// PATCH appends, PUT ?digest= completes, GET reports, DELETE cancels.
func (g *Registry) upload(w http.ResponseWriter, r *http.Request, name, id string) *regError {
	if id == "" {
		if r.Method != http.MethodPost {
			return errUnsupported
		}
		return g.startUpload(w, r, name)
	}
	if !uploadRe.MatchString(id) {
		return errBlobUploadUnknown
	}
	size, err := g.st.uploadSize(id)
	if errors.Is(err, fs.ErrNotExist) {
		return errBlobUploadUnknown
	}
	if err != nil {
		return g.fail(r, err)
	}
	switch r.Method {
	case http.MethodGet:
		uploadHeaders(w, name, id, size)
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodDelete:
		if err := os.Remove(g.st.uploadPath(id)); err != nil {
			return g.fail(r, err)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		start, e := contentRangeStart(r.Header.Get("Content-Range"))
		if e != nil {
			return e
		}
		size, err := g.st.appendUpload(id, start, r.Body)
		if errors.Is(err, errRangeMismatch) {
			uploadHeaders(w, name, id, size)
			return errRangeInvalid
		}
		if err != nil {
			return g.fail(r, err)
		}
		uploadHeaders(w, name, id, size)
		w.WriteHeader(http.StatusAccepted)
		return nil
	case http.MethodPut:
		return g.finishUpload(w, r, name, id)
	}
	return errUnsupported
}

func (g *Registry) startUpload(w http.ResponseWriter, r *http.Request, name string) *regError {
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" && validDigest(mount) {
		g.st.gc.RLock()
		ok, err := g.st.touchBlob(mount)
		g.st.gc.RUnlock()
		if err != nil {
			return g.fail(r, err)
		}
		if ok {
			blobCreated(w, name, mount)
			return nil
		}
	}
	id, err := g.st.newUpload()
	if err != nil {
		return g.fail(r, err)
	}
	if q.Get("digest") != "" {
		return g.finishUpload(w, r, name, id)
	}
	uploadHeaders(w, name, id, 0)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// finishUpload appends the request body and commits the upload under the
// digest of the query.
func (g *Registry) finishUpload(w http.ResponseWriter, r *http.Request, name, id string) *regError {
	digest := r.URL.Query().Get("digest")
	if !validDigest(digest) {
		return errDigestInvalid.with("a sha256 digest query parameter is required")
	}
	if _, err := g.st.appendUpload(id, -1, r.Body); err != nil {
		return g.fail(r, err)
	}
	ok, err := g.st.commitUpload(id, digest)
	if err != nil {
		return g.fail(r, err)
	}
	if !ok {
		os.Remove(g.st.uploadPath(id))
		return errDigestInvalid
	}
	blobCreated(w, name, digest)
	return nil
}

func blobCreated(w http.ResponseWriter, name, digest string) {
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+digest)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

func uploadHeaders(w http.ResponseWriter, name, id string, size int64) {
	end := size - 1
	if end < 0 {
		end = 0
	}
	w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", end))
	w.Header().Set("Content-Length", "0")
}

// contentRangeStart parses the start of a PATCH Content-Range ("start-end",
// optionally with a "bytes " prefix); -1 when the header is absent.
func contentRangeStart(h string) (int64, *regError) {
	if h == "" {
		return -1, nil
	}
	h = strings.TrimPrefix(strings.TrimSpace(h), "bytes ")
	a, _, ok := strings.Cut(h, "-")
	n, err := strconv.ParseInt(a, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, errBlobUploadInvalid.with("malformed Content-Range")
	}
	return n, nil
}
