package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

// TestBlobCorruptedByConcurrentPatch: a PATCH still streaming into an
// upload kept writing after a PUT committed (renamed) the upload, so the
// blob stored under sha256(X) ended up holding X+Y; and the commit renamed
// over an existing blob, replacing an intact one other images use. The
// requests of one upload are now serialised and a stored blob is never
// replaced.
func TestBlobCorruptedByConcurrentPatch(t *testing.T) {
	g, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	x := []byte("layer content X")
	sum := sha256.Sum256(x)
	digest := "sha256:" + hex.EncodeToString(sum[:])

	// An intact blob, pushed monolithically.
	if r := do(t, "POST", srv.URL+"/v2/ns/good/blobs/uploads/?digest="+digest, string(x)); r.StatusCode != 201 {
		t.Fatalf("monolithic push: %d", r.StatusCode)
	}

	r := do(t, "POST", srv.URL+"/v2/ns/evil/blobs/uploads/", "")
	loc := srv.URL + r.Header.Get("Location")
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("PATCH", loc, pr)
		req.Header.Set("Content-Type", "application/octet-stream")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pw.Write(x)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if g := do(t, "GET", loc, ""); g.Header.Get("Range") == "0-14" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("PATCH data never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The PUT commits while the PATCH is still streaming: it must wait
	// for the PATCH, and then find the content no longer matches.
	put := make(chan int, 1)
	go func() { put <- do(t, "PUT", loc+"?digest="+digest, "").StatusCode }()
	time.Sleep(100 * time.Millisecond)
	pw.Write([]byte(" + injected Y"))
	pw.Close()
	<-done
	if code := <-put; code == 201 {
		t.Fatalf("PUT of %s committed an upload that holds more", digest)
	}

	req, _ := http.NewRequest("GET", srv.URL+"/v2/ns/good/blobs/"+digest, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	gs := sha256.Sum256(got)
	if hex.EncodeToString(gs[:]) != hex.EncodeToString(sum[:]) {
		t.Fatalf("blob %s now holds %q (sha256:%x): stored under a digest it does not match", digest, got, gs)
	}
}

// TestRepoWithManifestsComponent: "a/manifests/b" is a valid repository
// name; route() used to match "/manifests/" before "/blobs/", so every
// blob and upload request of that repository was taken for a manifest
// request with an invalid tag and the push failed.
func TestRepoWithManifestsComponent(t *testing.T) {
	_, host := newServer(t, t.TempDir(), Options{})
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	push(t, host+"/team/manifests/x:v1", img)
}

// TestAbandonedUploadsSwept: upload sessions untouched for a day are
// removed (at open, and then at most hourly when uploads start); recent
// ones stay.
func TestAbandonedUploadsSwept(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	clock := func() time.Time { return now }
	g, err := New(dir, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	old, err := g.st.newUpload()
	if err != nil {
		t.Fatal(err)
	}
	recent, err := g.st.newUpload()
	if err != nil {
		t.Fatal(err)
	}
	day := now.Add(-25 * time.Hour)
	if err := os.Chtimes(g.st.uploadPath(old), day, day); err != nil {
		t.Fatal(err)
	}
	// Within the hour: no sweep yet.
	if _, err := g.st.newUpload(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.st.uploadPath(old)); err != nil {
		t.Fatalf("swept before the hour: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := g.st.newUpload(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.st.uploadPath(old)); !os.IsNotExist(err) {
		t.Fatalf("abandoned upload kept: %v", err)
	}
	if _, err := os.Stat(g.st.uploadPath(recent)); err != nil {
		t.Fatalf("recent upload removed: %v", err)
	}
	// At open.
	if err := os.Chtimes(g.st.uploadPath(recent), day, day); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir, Options{Now: clock}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.st.uploadPath(recent)); !os.IsNotExist(err) {
		t.Fatalf("abandoned upload kept at open: %v", err)
	}
}
