package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/blob/mem"
	"github.com/snapstack/snapstack/internal/chunk"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/engine"
	"github.com/snapstack/snapstack/internal/param"
)

// A SnapshotId that is not a valid blob name is client input: it gets
// SnapshotNotFound like an unknown one, never an InternalError (a review
// found that regression in the Verify change).
func TestVerifySnapshotInvalidIDIsNotFound(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := engine.New(filepath.Join(t.TempDir(), "volumes"), mem.New(), chunk.DefaultCompression, log)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	h := dataAdmin(eng, nil, log)["VerifySnapshot"]
	for _, id := range []string{"s-unknown", "s 1", "../s-1", "s-1/", "s-1/../x"} {
		_, err := h(context.Background(), ecs.Caller{}, param.New(url.Values{"SnapshotId": {id}}))
		if !errors.Is(err, apierr.SnapshotNotFound) {
			t.Errorf("VerifySnapshot(%q) = %v (code %v); want SnapshotNotFound", id, err, apierr.As(err))
		}
	}
}
