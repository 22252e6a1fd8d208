package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func newServer(t *testing.T, dir string, opts Options) (*Registry, string) {
	t.Helper()
	g, err := New(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, strings.TrimPrefix(srv.URL, "http://")
}

func push(t *testing.T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func pull(t *testing.T, ref string, opts ...remote.Option) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r, opts...)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

// TestPushPullPersist pushes with go-containerregistry, pulls it back
// (validating every blob), restarts the registry on the same directory
// and finds tags and blobs again.
func TestPushPullPersist(t *testing.T) {
	dir := t.TempDir()
	_, host := newServer(t, dir, Options{})
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	push(t, host+"/ns/repo:v1", img)
	push(t, host+"/ns/other:v1", img) // every blob exists: mounted
	want, _ := img.Digest()
	if err := validate.Image(pull(t, host+"/ns/repo:v1")); err != nil {
		t.Fatal(err)
	}

	_, host2 := newServer(t, dir, Options{})
	got := pull(t, host2+"/ns/repo:v1")
	if d, _ := got.Digest(); d != want {
		t.Fatalf("digest after restart = %s, want %s", d, want)
	}
	if err := validate.Image(got); err != nil {
		t.Fatal(err)
	}
	pull(t, host2+"/ns/repo@"+want.String())
	repo, _ := name.NewRepository(host2 + "/ns/repo")
	tags, err := remote.List(repo)
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("tags = %v, %v", tags, err)
	}
	cat, err := remote.Catalog(context.Background(), repo.Registry)
	if err != nil || strings.Join(cat, ",") != "ns/other,ns/repo" {
		t.Fatalf("catalog = %v, %v", cat, err)
	}
}

func TestAuth(t *testing.T) {
	_, host := newServer(t, t.TempDir(), Options{Authenticate: func(_ context.Context, u, p string) bool { return u == "ak" && p == "sk" }})
	img, _ := random.Image(100, 1)
	r, _ := name.ParseReference(host + "/ns/repo:v1")
	if err := remote.Write(r, img); err == nil {
		t.Fatal("anonymous push accepted")
	}
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "ak", Password: "bad"})); err == nil {
		t.Fatal("push with a wrong password accepted")
	}
	push(t, host+"/ns/repo:v1", img, remote.WithAuth(&authn.Basic{Username: "ak", Password: "sk"}))
	resp, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("ping without credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestTransport pushes and pulls in-process, past authentication.
func TestTransport(t *testing.T) {
	g, err := New(t.TempDir(), Options{Authenticate: func(context.Context, string, string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(1<<20, 2)
	tr := remote.WithTransport(g.Transport())
	push(t, "snapstack.invalid:9090/ns/repo:v1", img, tr)
	if err := validate.Image(pull(t, "snapstack.invalid:9090/ns/repo:v1", tr)); err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference("snapstack.invalid:9090/ns/repo:none")
	if _, err := remote.Head(ref, tr); err == nil {
		t.Fatal("HEAD of a missing tag succeeded")
	}
}

func do(t *testing.T, method, url, body string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestChunkedUploadAndErrors drives the protocol by hand: chunked upload
// with Content-Range, a range gap, a wrong digest, bad names and tags,
// manifests naming unknown blobs, tag deletion and paging.
func TestChunkedUploadAndErrors(t *testing.T) {
	dir := t.TempDir()
	_, host := newServer(t, dir, Options{})
	base := "http://" + host + "/v2/"
	resp := do(t, "POST", base+"ns/repo/blobs/uploads/", "")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 202 || loc == "" {
		t.Fatalf("start: %d %q", resp.StatusCode, loc)
	}
	u := "http://" + host + loc
	if r := do(t, "PATCH", u, "hello ", "Content-Range", "0-5"); r.StatusCode != 202 || r.Header.Get("Range") != "0-5" {
		t.Fatalf("patch 1: %d %q", r.StatusCode, r.Header.Get("Range"))
	}
	if r := do(t, "PATCH", u, "x", "Content-Range", "9-9"); r.StatusCode != 416 {
		t.Fatalf("gap: %d", r.StatusCode)
	}
	sum := sha256.Sum256([]byte("hello world"))
	dg := "sha256:" + hex.EncodeToString(sum[:])
	if r := do(t, "PUT", u+"?digest=sha256:"+strings.Repeat("0", 64), ""); r.StatusCode != 400 {
		t.Fatalf("wrong digest: %d", r.StatusCode)
	}
	resp = do(t, "POST", base+"ns/repo/blobs/uploads/", "")
	u = "http://" + host + resp.Header.Get("Location")
	do(t, "PATCH", u, "hello ")
	if r := do(t, "PUT", u+"?digest="+dg, "world"); r.StatusCode != 201 || r.Header.Get("Docker-Content-Digest") != dg {
		t.Fatalf("finish: %d", r.StatusCode)
	}
	if r := do(t, "GET", base+"ns/repo/blobs/"+dg, "", "Range", "bytes=6-10"); r.StatusCode != 206 {
		t.Fatalf("range get: %d", r.StatusCode)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", dg[7:])); string(b) != "hello world" {
		t.Fatalf("stored blob %q", b)
	}
	for _, p := range []string{"../etc/blobs/" + dg, "NS/repo/tags/list", "ns//repo/manifests/v1", "a/../b/manifests/v1"} {
		if r := do(t, "GET", base+p, ""); r.StatusCode != 400 && r.StatusCode != 404 {
			t.Errorf("GET %s: %d", p, r.StatusCode)
		}
	}
	if r := do(t, "PUT", base+"ns/repo/manifests/.bad", "{}"); r.StatusCode != 400 {
		t.Errorf("bad tag: %d", r.StatusCode)
	}
	mf := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("1", 64) + `","size":2},"layers":[]}`
	if r := do(t, "PUT", base+"ns/repo/manifests/v1", mf, "Content-Type", "application/vnd.oci.image.manifest.v1+json"); r.StatusCode != 400 {
		t.Errorf("manifest with unknown config: %d", r.StatusCode)
	}
	mf = strings.Replace(mf, "sha256:"+strings.Repeat("1", 64), dg, 1)
	for _, tag := range []string{"a", "b", "c"} {
		if r := do(t, "PUT", base+"ns/repo/manifests/"+tag, mf, "Content-Type", "application/vnd.oci.image.manifest.v1+json"); r.StatusCode != 201 {
			t.Fatalf("manifest %s: %d", tag, r.StatusCode)
		}
	}
	resp, _ = http.Get(base + "ns/repo/tags/list?n=2")
	var tl struct{ Tags []string }
	json.NewDecoder(resp.Body).Decode(&tl)
	resp.Body.Close()
	if strings.Join(tl.Tags, ",") != "a,b" || !strings.Contains(resp.Header.Get("Link"), "last=b") {
		t.Fatalf("page 1: %v %q", tl.Tags, resp.Header.Get("Link"))
	}
	if r := do(t, "DELETE", base+"ns/repo/manifests/b", ""); r.StatusCode != 202 {
		t.Fatalf("delete tag: %d", r.StatusCode)
	}
	if r := do(t, "GET", base+"ns/repo/manifests/b", ""); r.StatusCode != 404 {
		t.Fatalf("deleted tag: %d", r.StatusCode)
	}
	if r := do(t, "HEAD", base+"ns/repo/manifests/a", ""); r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("head: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
}
