package ecs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
)

// ClientToken idempotency (spec 0.x, docs/compatibility.md): the same
// token with the same parameters returns the first request's resource;
// with other parameters it is IdempotentParameterMismatch; while the first
// request is still being processed it is IdempotentProcessing, until
// staleToken has passed (the request died) and a retry takes it over.

// claimToken checks action's token in tx. existing is the resource made by
// an earlier request with the same token and parameters (hash). Otherwise
// the token is recorded as being processed by this request.
func (s *Service) claimToken(tx meta.Tx, accountID, action, token, hash string) (existing string, err error) {
	tok, err := tx.GetToken(accountID, action, token)
	switch {
	case err == nil && tok.ParamsHash != hash:
		return "", apierr.IdempotentParameterMismatch
	case err == nil && tok.ResultID != "":
		return tok.ResultID, nil
	case err == nil && s.clock.Now().Sub(tok.CreatedAt) < staleToken:
		return "", apierr.IdempotentProcessing
	case err != nil && !errors.Is(err, meta.ErrNotFound):
		return "", err
	}
	return "", tx.PutToken(&meta.IdempotencyToken{AccountID: accountID, Action: action, Token: token,
		ParamsHash: hash, CreatedAt: s.clock.Now()})
}

// settleToken records resultID as what the token's request made.
func settleToken(tx meta.Tx, accountID, action, token, resultID string) error {
	tok, err := tx.GetToken(accountID, action, token)
	if err != nil {
		return err
	}
	tok.ResultID = resultID
	return tx.PutToken(tok)
}

// releaseToken lets a retry take over the token of a request that failed.
func (s *Service) releaseToken(accountID, action, token string) {
	err := s.store.Update(context.Background(), func(tx meta.Tx) error {
		return freeToken(tx, accountID, action, token)
	})
	if err != nil {
		s.log.Error("release client token", "action", action, "err", err)
	}
}

// freeToken makes a token that produced nothing stale at once, in tx, so
// that a retry takes it over; an unknown token is not an error.
func freeToken(tx meta.Tx, accountID, action, token string) error {
	tok, err := tx.GetToken(accountID, action, token)
	if errors.Is(err, meta.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if tok.ResultID != "" {
		return nil
	}
	tok.CreatedAt = time.Time{}
	return tx.PutToken(tok)
}

// paramsHash identifies a request's parameters for token comparison.
func paramsHash(fields ...any) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%#v", fields))
	return hex.EncodeToString(h[:])
}
