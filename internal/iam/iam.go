// Package iam resolves AccessKeys to accounts and remembers signature
// nonces, on the metadata store.
package iam

import (
	"context"
	"errors"
	"time"

	"github.com/snapstack/snapstack/internal/meta"
)

// ErrUnknownKey: no such AccessKeyId.
var ErrUnknownKey = errors.New("iam: unknown access key")

// Keys looks up AccessKeys.
type Keys struct {
	store meta.Store
}

// New returns Keys on store.
func New(store meta.Store) *Keys { return &Keys{store: store} }

// Lookup returns the secret and account of an AccessKeyId, or ErrUnknownKey.
func (k *Keys) Lookup(ctx context.Context, id string) (secret, accountID string, err error) {
	err = k.store.View(ctx, func(tx meta.Tx) error {
		key, err := tx.GetAccessKey(id)
		if errors.Is(err, meta.ErrNotFound) {
			return ErrUnknownKey
		}
		if err != nil {
			return err
		}
		secret, accountID = key.Secret, key.AccountID
		return nil
	})
	return secret, accountID, err
}

// UseNonce records nonce for key until expires; false if it was seen.
func (k *Keys) UseNonce(ctx context.Context, keyID, nonce string, now, expires time.Time) (bool, error) {
	var fresh bool
	err := k.store.Update(ctx, func(tx meta.Tx) (err error) {
		fresh, err = tx.UseNonce(keyID, nonce, now, expires)
		return err
	})
	return fresh, err
}
