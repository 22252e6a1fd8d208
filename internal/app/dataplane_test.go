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
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/meta/sqlstore"
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
	ctx := context.Background()
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ids := []string{"s 1", "../s-1", "s-1/", "s-1/../x"}
	err = store.Update(ctx, func(tx meta.Tx) error {
		for _, id := range ids { // recorded, but with no data in the engine
			if err := tx.PutSnapshot(&meta.Snapshot{ID: id, AccountID: "acc1", Status: "accomplished"}); err != nil {
				return err
			}
		}
		return tx.PutSnapshot(&meta.Snapshot{ID: "s-other", AccountID: "acc2", Status: "accomplished"})
	})
	if err != nil {
		t.Fatal(err)
	}
	h := dataAdmin(eng, store, nil, log)["VerifySnapshot"]
	// s-other is another account's: not found either, as it was before
	// anyone looks at the engine.
	for _, id := range append(ids, "s-unknown", "s-other") {
		_, err := h(ctx, ecs.Caller{AccountID: "acc1"}, param.New(url.Values{"SnapshotId": {id}}))
		if !errors.Is(err, apierr.SnapshotNotFound) {
			t.Errorf("VerifySnapshot(%q) = %v (code %v); want SnapshotNotFound", id, err, apierr.As(err))
		}
	}
}
