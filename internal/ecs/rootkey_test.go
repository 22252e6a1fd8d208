package ecs

import (
	"context"
	"testing"

	"github.com/snapstack/snapstack/internal/meta"
)

// Rotating the root key through SNAPSTACK_ACCESS_KEY_ID/SECRET (a new key
// ID) retires the previous root key; the new one stays valid.
func TestRootKeyRotationRevokesOldKey(t *testing.T) {
	s, c := reviewService(t) // root key "ak-review"
	if _, err := s.EnsureRootAccount(context.Background(), "ak-rotated", "new-secret"); err != nil {
		t.Fatal(err)
	}
	err := s.store.View(context.Background(), func(tx meta.Tx) error {
		k, err := tx.GetAccessKey("ak-review")
		if err == nil {
			t.Errorf("old root key still authenticates for account %s (caller %s)", k.AccountID, c.AccountID)
		}
		if k, err := tx.GetAccessKey("ak-rotated"); err != nil || k.AccountID != c.AccountID {
			t.Errorf("new root key: %+v, %v", k, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
