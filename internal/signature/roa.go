package signature

import (
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// ROA HMAC-SHA1 ("Authorization: acs <AK>:<base64sig>"), protocol.md 4.3.

// parseROA parses "acs <AK>:<sig>"; the AccessKeyId is everything between
// "acs " and the last ':'.
func parseROA(r *Request, auth string) (*Signed, error) {
	cred := strings.TrimSpace(strings.TrimPrefix(auth, "acs "))
	i := strings.LastIndexByte(cred, ':')
	if i < 0 {
		return nil, malformed("Authorization: acs credential without ':'")
	}
	ak, sig := strings.TrimSpace(cred[:i]), strings.TrimSpace(cred[i+1:])
	if ak == "" || sig == "" {
		return nil, malformed("Authorization: acs credential with empty AccessKeyId or signature")
	}
	if m := headerValues(r.Header, "x-acs-signature-method"); len(m) > 0 && (len(m) != 1 || m[0] != algHMACSHA1) {
		return nil, fmt.Errorf("x-acs-signature-method %q: %w", strings.Join(m, ","), ErrUnsupportedAlgorithm)
	}
	query, err := parseQuery(r.RawQuery, "query")
	if err != nil {
		return nil, err
	}
	s := &Signed{
		Scheme:        SchemeROA,
		Algorithm:     algHMACSHA1,
		AccessKeyID:   ak,
		SecurityToken: headerGet(r.Header, "x-acs-security-token"),
		Nonce:         headerGet(r.Header, "x-acs-signature-nonce"),
		req:           r,
		signature:     sig,
		query:         query,
	}
	if t, err := http.ParseTime(headerGet(r.Header, "Date")); err == nil {
		s.Time = t
	}
	return s, nil
}

// verifyROA checks Content-MD5 (when sent; it is the only thing binding the
// body to a legacy ROA signature) and then tries every string-to-sign
// alternative. Every alternative is computed and compared, so the time taken
// does not depend on which one matched.
func (s *Signed) verifyROA(secret string) error {
	if md := headerGet(s.req.Header, "Content-MD5"); md != "" {
		sum := md5.Sum(s.req.Body)
		if strings.TrimSpace(md) != base64.StdEncoding.EncodeToString(sum[:]) {
			return ErrContentHashMismatch
		}
	}
	ok := false
	for _, sts := range s.roaStringsToSign() {
		want := base64.StdEncoding.EncodeToString(hmacSum(sha1.New, secret, sts))
		if equalConstantTime(want, s.signature) {
			ok = true
		}
	}
	if !ok {
		return ErrMismatch
	}
	return nil
}

// roaStringsToSign returns the distinct strings to sign a client may have
// used, the tea/Go form (path as sent, empty value as "name") first:
//
//	METHOD \n Accept \n Content-MD5 \n Content-Type \n Date \n
//	CanonicalizedAcsHeaders CanonicalizedResource
func (s *Signed) roaStringsToSign() []string {
	h := s.req.Header
	head := strings.Join([]string{
		s.req.Method,
		headerGet(h, "Accept"),
		headerGet(h, "Content-MD5"),
		headerGet(h, "Content-Type"),
		headerGet(h, "Date"),
		roaAcsHeaders(h),
	}, "\n")

	raw := canonicalPath(s.req.RawPath)
	paths := []string{raw}
	if dec, err := url.PathUnescape(raw); err == nil && dec != raw {
		paths = append(paths, dec) // legacy CommonRequest signs the decoded path
	}
	queries := []string{roaQuery(s.query, false)}
	if q := roaQuery(s.query, true); q != queries[0] {
		queries = append(queries, q) // Node writes empty values as "name="
	}

	out := make([]string, 0, len(paths)*len(queries))
	for _, p := range paths {
		for _, q := range queries {
			out = append(out, head+p+q)
		}
	}
	return out
}

// roaAcsHeaders returns "name:value\n" for every x-acs-* header, names
// lower-cased and sorted (several values joined by ',').
func roaAcsHeaders(h http.Header) string {
	vals := make(map[string][]string)
	for k, v := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-acs-") {
			vals[lk] = append(vals[lk], v...)
		}
	}
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(strings.Join(vals[k], ","))
		b.WriteByte('\n')
	}
	return b.String()
}

// roaQuery returns "" without query parameters, else "?" followed by the
// decoded parameters sorted by name as name=value with raw, unencoded values,
// joined by '&'. An empty value is written "name" (Go clients) or, with
// emptyEq, "name=" (Node clients).
func roaQuery(q url.Values, emptyEq bool) string {
	if len(q) == 0 {
		return ""
	}
	var b strings.Builder
	for _, k := range sortedKeys(q) {
		for _, v := range q[k] {
			if b.Len() == 0 {
				b.WriteByte('?')
			} else {
				b.WriteByte('&')
			}
			b.WriteString(k)
			if v != "" || emptyEq {
				b.WriteByte('=')
				b.WriteString(v)
			}
		}
	}
	return b.String()
}
