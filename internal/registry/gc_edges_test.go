package registry

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestCollectKeepsManifestAlsoNamedAsLayer: a linked manifest whose bytes
// are also another manifest's layer is still read as a manifest, so its
// config and layers are kept (a review found them removed).
func TestCollectKeepsManifestAlsoNamedAsLayer(t *testing.T) {
	clock := newTestClock()
	g, err := New(t.TempDir(), Options{Now: clock.now, BlobGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cfg := uploadBlob(t, g, "b", []byte(`{"architecture":"amd64","os":"linux"}`))
	layer := uploadBlob(t, g, "b", []byte("layer of b"))
	m2 := storeManifest(t, g, "b", "v1", "application/vnd.oci.image.manifest.v1+json", imageManifest(cfg, layer))
	// Repository "a" (listed first) stores an artifact whose layer is
	// m2's bytes (e.g. an image manifest archived as an artifact).
	cfgA := uploadBlob(t, g, "a", []byte(`{}`))
	storeManifest(t, g, "a", "v1", "application/vnd.oci.image.manifest.v1+json", imageManifest(cfgA, m2))

	clock.advance(48 * time.Hour)
	if _, err := g.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	have := blobNames(t, g)
	for _, d := range []string{cfg, layer} {
		if !have[d] {
			t.Errorf("blob %s of the linked manifest b@%s removed", d, m2)
		}
	}
}

// TestCollectKeepsBlobsOfOtherManifestFormats: the registry accepts any
// JSON manifest with a media type; the blobs of formats besides image
// manifests and indexes (Docker schema 1 fsLayers[].blobSum, artifact
// manifests' blobs[]) are kept while the manifest is linked.
func TestCollectKeepsBlobsOfOtherManifestFormats(t *testing.T) {
	for _, tc := range []struct{ name, mt, tmpl string }{
		{"schema1", "application/vnd.docker.distribution.manifest.v1+json",
			`{"schemaVersion":1,"name":"ns/r","tag":"v1","architecture":"amd64","fsLayers":[{"blobSum":"%s"}],"history":[{"v1Compatibility":"{}"}]}`},
		{"artifact", "application/vnd.oci.artifact.manifest.v1+json",
			`{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","artifactType":"x/y","blobs":[{"mediaType":"x/z","digest":"%s","size":4}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newTestClock()
			g, err := New(t.TempDir(), Options{Now: clock.now, BlobGrace: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			d := uploadBlob(t, g, "ns/r", []byte("blob"))
			storeManifest(t, g, "ns/r", "v1", tc.mt, []byte(fmt.Sprintf(tc.tmpl, d)))
			clock.advance(48 * time.Hour)
			if _, err := g.Collect(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !blobNames(t, g)[d] {
				t.Errorf("blob %s named by the linked %s manifest removed", d, tc.name)
			}
		})
	}
}

// TestCollectSurvivesConcurrentTagDeletes: a tag deleted while Collect
// lists the tags (deletes take no lock) is skipped, not an error that
// stops the collection.
func TestCollectSurvivesConcurrentTagDeletes(t *testing.T) {
	g, err := New(t.TempDir(), Options{BlobGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cfg := uploadBlob(t, g, "ns/r", []byte(`{}`))
	body := imageManifest(cfg)
	const n = 300
	for i := range n {
		storeManifest(t, g, "ns/r", fmt.Sprintf("t%d", i), "application/vnd.oci.image.manifest.v1+json", body)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, httptest.NewRequest("DELETE", fmt.Sprintf("/v2/ns/r/manifests/t%d", i), nil))
		}
	}()
	var failed error
	for range 200 {
		if _, err := g.Collect(context.Background()); err != nil {
			failed = err
			break
		}
	}
	wg.Wait()
	if failed != nil {
		t.Fatalf("Collect failed because a tag was deleted meanwhile: %v", failed)
	}
}

// TestGetManifestRacingCollectIsNotFound: a manifest GET that resolved
// the link before a DELETE and a Collect removed the body answers 404
// (MANIFEST_UNKNOWN), not 500.
func TestGetManifestRacingCollectIsNotFound(t *testing.T) {
	g, err := New(t.TempDir(), Options{BlobGrace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		cfg := uploadBlob(t, g, "ns/r", []byte(`{}`))
		body := imageManifest(cfg, uploadBlob(t, g, "ns/r", []byte(fmt.Sprint("l", i))))
		d := storeManifest(t, g, "ns/r", fmt.Sprintf("v%d", i), "application/vnd.oci.image.manifest.v1+json", body)
		var wg sync.WaitGroup
		var code int
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/ns/r/manifests/"+d, nil))
			code = rec.Code
		}()
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest("DELETE", "/v2/ns/r/manifests/"+d, nil))
		g.Collect(context.Background())
		wg.Wait()
		if code == http.StatusInternalServerError {
			t.Fatalf("round %d: GET of a manifest deleted meanwhile answered 500, want 200 or 404", i)
		}
	}
}
