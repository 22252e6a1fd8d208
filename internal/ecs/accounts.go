package ecs

import (
	"context"
	"errors"

	"github.com/snapstack/snapstack/internal/meta"
)

// EnsureRootAccount creates the root account with its default resource
// group and the given AccessKey if they do not exist yet. It returns the
// account ID. An existing key with the same ID keeps its account; its
// secret is replaced by the given one (the environment wins).
func (s *Service) EnsureRootAccount(ctx context.Context, keyID, secret string) (string, error) {
	var accountID string
	err := s.store.Update(ctx, func(tx meta.Tx) error {
		now := s.clock.Now()
		k, err := tx.GetAccessKey(keyID)
		switch {
		case err == nil:
			accountID = k.AccountID
			if k.Secret != secret {
				k.Secret = secret
				if err := tx.PutAccessKey(k); err != nil {
					return err
				}
			}
			return s.revokeOtherKeys(tx, accountID, keyID)
		case !errors.Is(err, meta.ErrNotFound):
			return err
		}
		accs, err := tx.ListAccounts()
		if err != nil {
			return err
		}
		if len(accs) > 0 {
			accountID = accs[0].ID
		} else {
			accountID = newAccountID()
			if err := tx.PutAccount(&meta.Account{ID: accountID, Name: "root", CreatedAt: now}); err != nil {
				return err
			}
			rg := &meta.ResourceGroup{ID: newID("rg", "acfm"), AccountID: accountID, Name: "default", Default: true, CreatedAt: now}
			if err := tx.PutResourceGroup(rg); err != nil {
				return err
			}
		}
		if err := tx.PutAccessKey(&meta.AccessKey{ID: keyID, Secret: secret, AccountID: accountID, CreatedAt: now}); err != nil {
			return err
		}
		return s.revokeOtherKeys(tx, accountID, keyID)
	})
	return accountID, err
}

// revokeOtherKeys deletes the root account's keys but keep: the root key
// is the one the service starts with, so rotating it (a new key in the
// environment or the key file) retires the previous one. Every key of the
// root account is a root key: there are no RAM users.
func (s *Service) revokeOtherKeys(tx meta.Tx, accountID, keep string) error {
	keys, err := tx.ListAccessKeys(accountID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.ID == keep {
			continue
		}
		if err := tx.DeleteAccessKey(k.ID); err != nil {
			return err
		}
		s.log.Warn("root AccessKey revoked: the service started with another one", "access_key_id", k.ID)
	}
	return nil
}

// newAccountID returns a 16-digit account UID like Alibaba's.
func newAccountID() string {
	id := newID("x", "")
	out := []byte("1")
	for _, c := range id[2:17] {
		out = append(out, byte('0'+int(c)%10))
	}
	return string(out)
}
