// Package registry is snapstack's embedded OCI registry: the subset of the
// OCI distribution API (v1.1) that image clients use to push and pull
// (ping, blob HEAD/GET, monolithic and chunked uploads with cross-repository
// mounts, manifest GET/HEAD/PUT/DELETE by tag or digest, tag list and
// catalog with n/last paging). It is served under /v2/ on the API listener.
//
// Unlike go-containerregistry's pkg/registry (tags in memory only), every
// blob, manifest and tag is a file in the data directory, written through a
// temporary file, fsync and rename, so a restart sees exactly the committed
// state. Layout under the root directory:
//
//	blobs/sha256/<hex>              content-addressed blobs and manifests
//	uploads/<id>                    upload sessions in progress
//	repos/<name>/tags/<tag>         the digest a tag points at
//	repos/<name>/manifests/<hex>    a manifest of the repository; content: its media type
//
// where <name> is the repository name with '/' written as '+' (a character
// repository names cannot contain). Blobs are shared by all repositories;
// Collect removes those no linked manifest needs any more.
// Requests are authenticated with HTTP Basic (Options.Authenticate); the
// in-process Transport is trusted and skips it.
package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Options configure a Registry.
type Options struct {
	// Authenticate checks HTTP Basic credentials; nil serves everyone.
	Authenticate func(ctx context.Context, user, password string) bool
	// MaxManifest is the largest manifest accepted (default 4 MiB).
	MaxManifest int64
	// Log receives storage failures (nil: discarded).
	Log *slog.Logger
	// Now is the clock of upload expiry and of Collect (nil: time.Now).
	Now func() time.Time
	// BlobGrace is how long Collect keeps a blob no manifest names after
	// it was last uploaded, mounted or read (0: DefaultBlobGrace).
	BlobGrace time.Duration
}

// Registry is the http.Handler of /v2/.
type Registry struct {
	st   *store
	opts Options
}

// New opens (creating it if needed) a registry stored under dir.
func New(dir string, opts Options) (*Registry, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	st, err := openStore(dir, now)
	if err != nil {
		return nil, err
	}
	if opts.BlobGrace <= 0 {
		opts.BlobGrace = DefaultBlobGrace
	}
	if opts.MaxManifest <= 0 {
		opts.MaxManifest = 4 << 20
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Registry{st: st, opts: opts}, nil
}

type trustedKey struct{}

// ServeHTTP implements http.Handler.
func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if g.opts.Authenticate != nil && r.Context().Value(trustedKey{}) == nil {
		user, pass, ok := r.BasicAuth()
		if !ok || !g.opts.Authenticate(r.Context(), user, pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="snapstack"`)
			if r.ContentLength != 0 {
				// The body is not read: close rather than drain it.
				w.Header().Set("Connection", "close")
			}
			errUnauthorized.write(w)
			return
		}
	}
	// The server in front may bound the time a body takes to arrive (the
	// API's BodyTimeout); an authenticated layer upload may take longer.
	if r.Method == http.MethodPatch || r.Method == http.MethodPut || r.Method == http.MethodPost {
		http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	if e := g.route(w, r); e != nil {
		e.write(w)
	}
}

// route dispatches one request; a returned error has not been written.
func (g *Registry) route(w http.ResponseWriter, r *http.Request) *regError {
	p := r.URL.Path
	if p == "/v2" || p == "/v2/" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return errUnsupported
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
		return nil
	}
	if !strings.HasPrefix(p, "/v2/") {
		return errNotFound
	}
	p = strings.TrimPrefix(p, "/v2/")
	if p == "_catalog" {
		return g.catalog(w, r)
	}
	if name, ok := strings.CutSuffix(p, "/tags/list"); ok {
		if !validName(name) {
			return errNameInvalid
		}
		return g.tagList(w, r, name)
	}
	// A repository name may itself contain "manifests" or "blobs"
	// components; references, digests and upload IDs never contain "/",
	// so the route is the one whose last segment is a single component.
	if i := strings.LastIndex(p, "/blobs/uploads"); i > 0 && !strings.Contains(strings.TrimPrefix(p[i+len("/blobs/uploads"):], "/"), "/") &&
		(len(p) == i+len("/blobs/uploads") || p[i+len("/blobs/uploads")] == '/') {
		name, rest := p[:i], strings.TrimPrefix(p[i+len("/blobs/uploads"):], "/")
		if !validName(name) {
			return errNameInvalid
		}
		return g.upload(w, r, name, rest)
	}
	if i := strings.LastIndex(p, "/blobs/"); i > 0 && !strings.Contains(p[i+len("/blobs/"):], "/") {
		name, dg := p[:i], p[i+len("/blobs/"):]
		if !validName(name) {
			return errNameInvalid
		}
		return g.blob(w, r, name, dg)
	}
	if i := strings.LastIndex(p, "/manifests/"); i > 0 && !strings.Contains(p[i+len("/manifests/"):], "/") {
		name, ref := p[:i], p[i+len("/manifests/"):]
		if !validName(name) {
			return errNameInvalid
		}
		return g.manifest(w, r, name, ref)
	}
	return errNotFound
}

// fail logs a storage failure and returns the generic error the client
// sees: the cause stays on the server side.
func (g *Registry) fail(r *http.Request, err error) *regError {
	if errors.Is(err, errBlobMissing) {
		return errBlobUnknown
	}
	g.opts.Log.Error("registry", "method", r.Method, "path", r.URL.Path, "err", err)
	return errInternal
}
