package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/url"
	"sort"
	"strings"
	"time"
)

// ACS3-HMAC-SHA256 / ACS3-HMAC-SM3, protocol.md 4.2.

const (
	acs3SHA256 = "ACS3-HMAC-SHA256"
	acs3SM3    = "ACS3-HMAC-SM3"
)

// acs3MustSign lists headers that, when present, must be covered by
// SignedHeaders: Signed reports their values as authenticated (date,
// nonce, token), or the service acts on them (the action and version it
// runs, the content type that says how the signed body is read). The
// official clients sign all of them.
var acs3MustSign = []string{"x-acs-date", "x-acs-signature-nonce", "x-acs-security-token",
	"x-acs-action", "x-acs-version", "content-type"}

// maxSignedHeaders bounds SignedHeaders (the official clients sign 7 to
// 9 headers), so that a forged request costs little to refuse.
const maxSignedHeaders = 64

// parseACS3 parses
// "<ALG> Credential=<AK>,SignedHeaders=<h1;h2;...>,Signature=<hex>".
func parseACS3(r *Request, auth string) (*Signed, error) {
	alg, rest, _ := strings.Cut(auth, " ")
	var newHash func() hash.Hash
	switch alg {
	case acs3SHA256:
		newHash = sha256.New
	case acs3SM3:
		newHash = NewSM3
	default:
		return nil, fmt.Errorf("%q: %w", alg, ErrUnsupportedAlgorithm)
	}
	fields := make(map[string]string, 3)
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, malformed("Authorization: %q is not name=value", part)
		}
		if _, dup := fields[k]; dup {
			return nil, malformed("Authorization: duplicate %s", k)
		}
		fields[k] = strings.TrimSpace(v)
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return nil, malformed("Authorization: no %s", k)
		}
	}
	names := strings.Split(fields["SignedHeaders"], ";")
	if len(names) > maxSignedHeaders {
		return nil, malformed("Authorization: more than %d names in SignedHeaders", maxSignedHeaders)
	}
	for i, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			return nil, malformed("Authorization: empty name in SignedHeaders")
		}
		names[i] = n
	}
	query, err := parseQuery(r.RawQuery, "query")
	if err != nil {
		return nil, err
	}
	s := &Signed{
		Scheme:           SchemeACS3,
		Algorithm:        alg,
		AccessKeyID:      fields["Credential"],
		SecurityToken:    headerGet(r.Header, "x-acs-security-token"),
		Nonce:            headerGet(r.Header, "x-acs-signature-nonce"),
		req:              r,
		signature:        strings.ToLower(fields["Signature"]),
		newHash:          newHash,
		signedHeaders:    names,
		signedHeadersRaw: fields["SignedHeaders"],
		query:            query,
	}
	if t, err := time.Parse(time.RFC3339, headerGet(r.Header, "x-acs-date")); err == nil {
		s.Time = t
	}
	return s, nil
}

func (s *Signed) verifyACS3(secret string) error {
	if sent := headerValues(s.req.Header, "x-acs-content-sha256"); len(sent) > 0 {
		if !strings.EqualFold(strings.TrimSpace(sent[0]), s.acs3PayloadHash()) {
			return ErrContentHashMismatch
		}
	}
	for _, h := range acs3MustSign {
		if len(headerValues(s.req.Header, h)) > 0 && !s.acs3Signs(h) {
			return ErrMismatch
		}
	}
	mac := hmacSum(s.newHash, secret, s.acs3StringToSign())
	if !equalConstantTime(hex.EncodeToString(mac), s.signature) {
		return ErrMismatch
	}
	return nil
}

// acs3Signs reports whether header name is listed in SignedHeaders.
func (s *Signed) acs3Signs(name string) bool {
	for _, n := range s.signedHeaders {
		if n == name {
			return true
		}
	}
	return false
}

// acs3PayloadHash is lowerhex(H(raw body)).
func (s *Signed) acs3PayloadHash() string {
	h := s.newHash()
	h.Write(s.req.Body)
	return hex.EncodeToString(h.Sum(nil))
}

// acs3StringToSign is ALG "\n" lowerhex(H(CanonicalRequest)).
func (s *Signed) acs3StringToSign() string {
	h := s.newHash()
	h.Write([]byte(s.acs3CanonicalRequest()))
	return s.Algorithm + "\n" + hex.EncodeToString(h.Sum(nil))
}

// acs3CanonicalRequest builds
// METHOD \n URI \n Query \n Headers(each ending in \n) \n SignedHeaders \n PayloadHash.
func (s *Signed) acs3CanonicalRequest() string {
	var b strings.Builder
	b.WriteString(s.req.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalPath(s.req.RawPath))
	b.WriteByte('\n')
	b.WriteString(acs3CanonicalQuery(s.query))
	b.WriteByte('\n')
	for _, name := range s.signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(s.acs3HeaderValue(name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(s.signedHeadersRaw)
	b.WriteByte('\n')
	b.WriteString(s.acs3PayloadHash())
	return b.String()
}

// acs3CanonicalQuery joins the decoded query parameters sorted by name as
// name=pct(value); names are not encoded (the clients do not encode them).
func acs3CanonicalQuery(q url.Values) string {
	var b strings.Builder
	for _, k := range sortedKeys(q) {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(pct(v))
		}
	}
	return b.String()
}

// acs3HeaderValue returns the canonical value of a signed header: trimmed,
// several values sorted and joined by ','. host comes from Request.Host.
func (s *Signed) acs3HeaderValue(name string) string {
	var vals []string
	if name == "host" && s.req.Host != "" {
		vals = []string{s.req.Host}
	} else {
		vals = headerValues(s.req.Header, name)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.TrimSpace(v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
