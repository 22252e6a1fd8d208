package oci

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestSilentRegistryTimesOut: a registry that takes the request and never
// answers fails it after Config.HeaderTimeout (with the transport's
// retries), as unreachable, instead of holding the caller until its
// context ends.
func TestSilentRegistryTimesOut(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(hang); srv.Close() })
	host := strings.TrimPrefix(srv.URL, "http://")
	b := NewBuilder(Config{Insecure: []string{host}, HeaderTimeout: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := b.Exists(ctx, Ref{Name: host + "/ns/repo:tag"})
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Exists on a silent registry: %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Exists took %v: the header timeout did not apply", d)
	}
	t.Logf("failed after %v: %v", time.Since(start), err)
}
