package signature

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// RPC HMAC-SHA1, protocol.md 4.1.

const (
	algHMACSHA1      = "HMAC-SHA1"
	rpcVersion       = "1.0"
	rpcTimestampForm = "2006-01-02T15:04:05Z"
	formContentType  = "application/x-www-form-urlencoded"
)

// parseRPC handles a request without a recognised Authorization header: it
// merges the decoded query with the decoded form body and looks for the
// Signature parameter.
func parseRPC(r *Request) (*Signed, error) {
	params, err := parseQuery(r.RawQuery, "query")
	if err != nil {
		return nil, err
	}
	if isForm(r.Header) && len(r.Body) > 0 {
		body, err := parseQuery(string(r.Body), "form body")
		if err != nil {
			return nil, err
		}
		for k, vs := range body {
			params[k] = append(params[k], vs...)
		}
	}
	sig := params.Get("Signature")
	if sig == "" {
		return nil, ErrMissingSignature
	}
	if m, ok := params["SignatureMethod"]; ok && (len(m) != 1 || m[0] != algHMACSHA1) {
		return nil, fmt.Errorf("SignatureMethod %q: %w", strings.Join(m, ","), ErrUnsupportedAlgorithm)
	}
	ak := params.Get("AccessKeyId")
	if ak == "" {
		return nil, malformed("RPC request without AccessKeyId")
	}
	s := &Signed{
		Scheme:        SchemeRPC,
		Algorithm:     algHMACSHA1,
		AccessKeyID:   ak,
		SecurityToken: params.Get("SecurityToken"),
		Nonce:         params.Get("SignatureNonce"),
		Params:        params,
		req:           r,
		signature:     sig,
	}
	if t, err := time.Parse(time.RFC3339, params.Get("Timestamp")); err == nil {
		s.Time = t
	}
	return s, nil
}

// isForm reports whether the Content-Type is application/x-www-form-urlencoded.
func isForm(h http.Header) bool {
	ct := headerGet(h, "Content-Type")
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt, _, _ = strings.Cut(ct, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	return mt == formContentType
}

func (s *Signed) verifyRPC(secret string) error {
	want := rpcSign(secret, rpcStringToSign(s.req.Method, s.Params))
	if !equalConstantTime(want, s.signature) {
		return ErrMismatch
	}
	return nil
}

// rpcCanonical builds the canonical query string: every parameter except
// Signature, sorted by (decoded) name, as pct(name)=pct(value) joined by '&'.
// Empty values are kept. Several values of one name (no SDK sends any) are
// kept in the order received, query before body.
func rpcCanonical(params url.Values) string {
	var b strings.Builder
	for _, k := range sortedKeys(params) {
		if k == "Signature" {
			continue
		}
		ek := pct(k)
		for _, v := range params[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(ek)
			b.WriteByte('=')
			b.WriteString(pct(v))
		}
	}
	return b.String()
}

// rpcStringToSign returns METHOD&%2F&pct(canonical).
func rpcStringToSign(method string, params url.Values) string {
	return method + "&%2F&" + pct(rpcCanonical(params))
}

// rpcSign returns base64(HMAC-SHA1(secret+"&", stringToSign)).
func rpcSign(secret, stringToSign string) string {
	return base64.StdEncoding.EncodeToString(hmacSum(sha1.New, secret+"&", stringToSign))
}

// SignRPC adds AccessKeyId, SignatureMethod, SignatureVersion, SignatureNonce,
// Timestamp (if absent) and Signature to params, for the given method (the
// HTTP method the request will use, e.g. "POST"). params must not be nil; an
// existing Signature is replaced. An empty nonce is replaced by 32 random hex
// digits and a zero t by the current time. The result can be sent as query
// (params.Encode()) or as a form body, or split between the two.
func SignRPC(method string, params url.Values, accessKeyID, secret string, nonce string, t time.Time) {
	if nonce == "" {
		nonce = randomNonce()
	}
	if t.IsZero() {
		t = time.Now()
	}
	params.Set("AccessKeyId", accessKeyID)
	params.Set("SignatureMethod", algHMACSHA1)
	params.Set("SignatureVersion", rpcVersion)
	params.Set("SignatureNonce", nonce)
	if params.Get("Timestamp") == "" {
		params.Set("Timestamp", t.UTC().Format(rpcTimestampForm))
	}
	params.Del("Signature")
	params.Set("Signature", rpcSign(secret, rpcStringToSign(method, params)))
}

// randomNonce returns 32 random lowercase hex digits, like the Go SDKs.
func randomNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
