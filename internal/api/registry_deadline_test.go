package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/registry"
)

// TestRegistryUploadOutlastsBodyTimeout: the edge bounds every body by
// BodyTimeout, but an authenticated layer upload through the mounted
// registry may take longer (a large layer over a slow link), so the
// registry lifts the deadline once it has checked the credentials. An
// anonymous upload gets its 401, and the connection is closed rather
// than drained.
func TestRegistryUploadOutlastsBodyTimeout(t *testing.T) {
	opts := DefaultOptions()
	opts.BodyTimeout = 200 * time.Millisecond
	var ran []string
	s := captureServer(t, clock.Real{}, opts, &ran).Config.Handler.(*Server)
	reg, err := registry.New(t.TempDir(), registry.Options{Authenticate: func(_ context.Context, user, pass string) bool {
		return user == "ak" && pass == "secret"
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.Mount("/v2/", reg)
	ts := httptest.NewServer(s)
	defer ts.Close()

	req, _ := http.NewRequest("POST", ts.URL+"/v2/ns/repo/blobs/uploads/", nil)
	req.SetBasicAuth("ak", "secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("start upload: %d, Location %q", resp.StatusCode, loc)
	}
	if loc[0] == '/' {
		loc = ts.URL + loc
	}
	// 8 pieces of 64 KiB, 100 ms apart: the body takes 4 times the
	// timeout to arrive.
	trickle := func() io.Reader {
		pr, pw := io.Pipe()
		go func() {
			piece := make([]byte, 64<<10)
			for range 8 {
				time.Sleep(100 * time.Millisecond)
				if _, err := pw.Write(piece); err != nil {
					return
				}
			}
			pw.Close()
		}()
		return pr
	}
	req, _ = http.NewRequest("PATCH", loc, trickle())
	req.SetBasicAuth("ak", "secret")
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("authenticated slow upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Range") != "0-524287" {
		t.Fatalf("authenticated slow upload: %d, Range %q; want 202 and all 512 KiB", resp.StatusCode, resp.Header.Get("Range"))
	}

	req, _ = http.NewRequest("PATCH", loc, trickle())
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Errorf("anonymous upload: %d, close %v; want 401 and the connection closed", resp.StatusCode, resp.Close)
		}
	}
}
