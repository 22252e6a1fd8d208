// Package signature verifies the request signatures produced by the official
// Alibaba Cloud SDKs, as described in shared/spec/protocol.md sections 3, 4
// and 6:
//
//   - RPC HMAC-SHA1 ("signature v1"): a Signature parameter in the query or
//     in a form-urlencoded body (protocol.md 4.1);
//   - ACS3-HMAC-SHA256 and ACS3-HMAC-SM3: an "Authorization: ACS3-..." header
//     over a canonical request (4.2);
//   - ROA HMAC-SHA1: an "Authorization: acs <AK>:<sig>" header, in its tea
//     and legacy flavours (4.3).
//
// Parse tells the schemes apart (4.4) and extracts the claimed identity;
// Signed.Verify then checks the signature against the caller's secret.
// Freshness (clock skew, nonce replay) is left to the caller, which gets
// Time and Nonce from the parsed request. SignRPC signs RPC parameters for
// clients and tests. Only the standard library is used; SM3 is implemented
// in this package (NewSM3).
//
// Errors are the exported sentinel values; compare them with errors.Is.
package signature

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Request is the part of an HTTP request that signatures cover.
type Request struct {
	Method   string      // "GET", "POST", ...
	RawPath  string      // path exactly as on the wire, still percent-encoded, without the query (Go server: r.URL.EscapedPath() is NOT enough; use the raw request target r.RequestURI up to '?')
	RawQuery string      // query as on the wire, without '?'
	Host     string      // Host header value (r.Host on a Go server)
	Header   http.Header // all headers (canonical-keyed as net/http gives them)
	Body     []byte      // raw body bytes
}

// Scheme identifies one of the signature schemes.
type Scheme int

const (
	SchemeRPC  Scheme = iota + 1 // RPC HMAC-SHA1 (Signature parameter in query or form body), section 4.1
	SchemeACS3                   // ACS3-HMAC-SHA256 or ACS3-HMAC-SM3 Authorization header, section 4.2
	SchemeROA                    // "acs AK:sig" Authorization header, section 4.3
)

// String returns a short name of the scheme.
func (s Scheme) String() string {
	switch s {
	case SchemeRPC:
		return "RPC"
	case SchemeACS3:
		return "ACS3"
	case SchemeROA:
		return "ROA"
	}
	return fmt.Sprintf("Scheme(%d)", int(s))
}

// Signed is a parsed, not yet verified, signed request.
//
// It keeps a reference to the Request given to Parse, which must not be
// modified until Verify has returned.
type Signed struct {
	Scheme        Scheme
	Algorithm     string     // "HMAC-SHA1", "ACS3-HMAC-SHA256", "ACS3-HMAC-SM3"
	AccessKeyID   string     // AccessKeyId parameter (RPC), Credential (ACS3), AK of "acs AK:sig" (ROA)
	SecurityToken string     // SecurityToken param / x-acs-security-token header, "" if none
	Nonce         string     // SignatureNonce / x-acs-signature-nonce; "" when the client sends none (legacy ROA)
	Time          time.Time  // Timestamp param (RPC), x-acs-date (ACS3), Date header RFC1123 (ROA); zero if absent or unparsable
	Params        url.Values // RPC only: decoded query merged with decoded form body (when Content-Type is application/x-www-form-urlencoded); nil for other schemes

	req       *Request
	signature string // the signature as sent (base64 for RPC/ROA, hex for ACS3)

	// ACS3 only.
	newHash          func() hash.Hash
	signedHeaders    []string   // lower-cased names from SignedHeaders, in the order sent
	signedHeadersRaw string     // SignedHeaders exactly as sent
	query            url.Values // decoded query (ACS3 and ROA)
}

var (
	ErrMissingSignature     = errors.New("signature: missing")
	ErrMalformed            = errors.New("signature: malformed")
	ErrUnsupportedAlgorithm = errors.New("signature: unsupported algorithm")
	ErrMismatch             = errors.New("signature: does not match")
	ErrContentHashMismatch  = errors.New("signature: content hash does not match body")
)

// Parse tells the scheme apart (protocol.md 4.4) and extracts the fields of
// Signed. An Authorization header starting with "ACS3-" selects ACS3, one
// starting with "acs " selects ROA; otherwise a Signature parameter in the
// query or form body selects RPC.
//
// Errors: ErrMissingSignature when there is no Authorization header of a
// known kind and no Signature parameter; ErrMalformed (wrapped with detail)
// for an unparsable Authorization header, query or form body, or an RPC
// request without AccessKeyId; ErrUnsupportedAlgorithm (wrapped) for an
// ACS3-* algorithm other than HMAC-SHA256/HMAC-SM3, an RPC SignatureMethod
// other than HMAC-SHA1, or a ROA x-acs-signature-method other than HMAC-SHA1.
func Parse(r *Request) (*Signed, error) {
	if r == nil {
		return nil, ErrMissingSignature
	}
	auth := strings.TrimSpace(headerGet(r.Header, "Authorization"))
	switch {
	case strings.HasPrefix(auth, "ACS3-"):
		return parseACS3(r, auth)
	case strings.HasPrefix(auth, "acs "):
		return parseROA(r, auth)
	}
	return parseRPC(r)
}

// Verify recomputes the signature with secret and compares it in constant
// time with the one sent. It returns nil, ErrMismatch, or
// ErrContentHashMismatch when the body does not match the content hash the
// client declared (ACS3: x-acs-content-sha256; ROA legacy: Content-MD5).
// The sentinels are returned unwrapped.
//
// ROA tolerates the two client divergences of protocol.md 4.3 (encoded vs
// decoded path; empty query value written as "name" vs "name=") by trying
// every alternative. ACS3 additionally rejects (ErrMismatch) a request whose
// x-acs-date, x-acs-signature-nonce or x-acs-security-token header is present
// but not covered by SignedHeaders, so Time, Nonce and SecurityToken are
// always authenticated once Verify returns nil.
func (s *Signed) Verify(secret string) error {
	if s == nil || s.req == nil {
		return ErrMismatch
	}
	switch s.Scheme {
	case SchemeRPC:
		return s.verifyRPC(secret)
	case SchemeACS3:
		return s.verifyACS3(secret)
	case SchemeROA:
		return s.verifyROA(secret)
	}
	return ErrMismatch
}

// StringToSign returns the string that was (or should have been) signed, for
// diagnostics in tests only. For ROA it is the first alternative tried: the
// path as sent and empty query values written as "name".
func (s *Signed) StringToSign() string {
	if s == nil || s.req == nil {
		return ""
	}
	switch s.Scheme {
	case SchemeRPC:
		return rpcStringToSign(s.req.Method, s.Params)
	case SchemeACS3:
		return s.acs3StringToSign()
	case SchemeROA:
		return s.roaStringsToSign()[0]
	}
	return ""
}

// malformed wraps ErrMalformed with detail.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrMalformed)
}

// equalConstantTime compares two signature strings in constant time.
func equalConstantTime(a, b string) bool {
	return hmac.Equal([]byte(a), []byte(b))
}

// hmacSum returns HMAC-H(key, msg).
func hmacSum(h func() hash.Hash, key, msg string) []byte {
	m := hmac.New(h, []byte(key))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// pct is the strict RFC 3986 percent-encoding of protocol.md 4: only
// A-Z a-z 0-9 - _ . ~ stay literal, every other byte becomes %XX (upper hex).
func pct(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// parseQuery decodes a query string or form body ('+' means space).
func parseQuery(raw, what string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, malformed("%s: %v", what, err)
	}
	return v, nil
}

// sortedKeys returns the names of v in byte order.
func sortedKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// headerValues returns all values of header name, looked up by canonical key
// and, should the map not be canonical-keyed, case-insensitively.
func headerValues(h http.Header, name string) []string {
	if v, ok := h[textproto.CanonicalMIMEHeaderKey(name)]; ok {
		return v
	}
	var out []string
	for k, v := range h {
		if strings.EqualFold(k, name) {
			out = append(out, v...)
		}
	}
	return out
}

// headerGet returns the first value of header name, or "".
func headerGet(h http.Header, name string) string {
	if v := headerValues(h, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// canonicalPath returns the raw path, "/" when empty.
func canonicalPath(raw string) string {
	if raw == "" {
		return "/"
	}
	return raw
}
