package ecs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
)

// TestSetStateOtherAccount: the admin action documents ResourceId as
// "an account's own ID for account states"; a caller of one account must
// not switch states of another account (which then gets
// InvalidAccountStatus.* on every CreateSnapshot), nor learn that it
// exists.
func TestSetStateOtherAccount(t *testing.T) {
	s, c := reviewService(t)
	ctx := context.Background()
	if err := s.store.Update(ctx, func(tx meta.Tx) error {
		return tx.PutAccount(&meta.Account{ID: "1999999999999999", Name: "victim", CreatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	_, err := s.SetState(ctx, c, values("ResourceType", "account", "ResourceId", "1999999999999999",
		"State", "SnapshotServiceUnavailable", "Value", "true"))
	var victim *meta.Account
	s.store.View(ctx, func(tx meta.Tx) (e error) { victim, e = tx.GetAccount("1999999999999999"); return e })
	if e := apierr.As(err); e == nil || e.Code != "InvalidParameter" || !strings.HasSuffix(e.Message, "No such account.") || victim.SnapshotServiceUnavailable {
		t.Errorf("caller %s set another account's state: err=%v victim=%+v", c.AccountID, err, victim)
	}
}
