package signature

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	acs3Fields = "Credential=testid,SignedHeaders=host,Signature=ab"
	rpcSigned  = "AccessKeyId=testid&Signature=abc%3D&SignatureMethod=HMAC-SHA1"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		auth  string
		hdr   map[string]string
		query string
		ctype string
		body  string
		want  error
	}{
		{name: "nothing", want: ErrMissingSignature},
		{name: "unknown Authorization", auth: "Bearer xyz", want: ErrMissingSignature},
		{name: "empty Signature", query: "AccessKeyId=testid&Signature=", want: ErrMissingSignature},
		{name: "form body not form", body: rpcSigned, ctype: "application/json", want: ErrMissingSignature},
		{name: "ACS3 no fields", auth: "ACS3-HMAC-SHA256", want: ErrMalformed},
		{name: "ACS3 garbage", auth: "ACS3-HMAC-SHA256 garbage", want: ErrMalformed},
		{name: "ACS3 no Signature", auth: "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host", want: ErrMalformed},
		{name: "ACS3 empty Credential", auth: "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=ab", want: ErrMalformed},
		{name: "ACS3 empty header name", auth: "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;;x-acs-date,Signature=ab", want: ErrMalformed},
		{name: "ACS3 duplicate field", auth: "ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=ab", want: ErrMalformed},
		{name: "ACS3 bad query", auth: "ACS3-HMAC-SHA256 " + acs3Fields, query: "a=%zz", want: ErrMalformed},
		{name: "ACS3 RSA", auth: "ACS3-RSA-SHA256 " + acs3Fields, want: ErrUnsupportedAlgorithm},
		{name: "ACS3 HMAC-SHA1", auth: "ACS3-HMAC-SHA1 " + acs3Fields, want: ErrUnsupportedAlgorithm},
		{name: "ROA no colon", auth: "acs testid", want: ErrMalformed},
		{name: "ROA empty AK", auth: "acs :c2ln", want: ErrMalformed},
		{name: "ROA empty signature", auth: "acs testid:", want: ErrMalformed},
		{name: "ROA bad query", auth: "acs testid:c2ln", query: "a=%zz", want: ErrMalformed},
		{name: "ROA SHA256", auth: "acs testid:c2ln", hdr: map[string]string{"x-acs-signature-method": "HMAC-SHA256"}, want: ErrUnsupportedAlgorithm},
		{name: "RPC SHA256", query: "AccessKeyId=testid&Signature=x&SignatureMethod=HMAC-SHA256", want: ErrUnsupportedAlgorithm},
		{name: "RPC two methods", query: rpcSigned + "&SignatureMethod=HMAC-SHA1", want: ErrUnsupportedAlgorithm},
		{name: "RPC no AccessKeyId", query: "Signature=x", want: ErrMalformed},
		{name: "RPC bad query", query: rpcSigned + "&a=%zz", want: ErrMalformed},
		{name: "RPC bad form body", ctype: formContentType, body: rpcSigned + "&b=%", want: ErrMalformed},
		{name: "RPC ok query", query: rpcSigned},
		{name: "RPC ok form body", ctype: "Application/X-WWW-Form-Urlencoded; charset=UTF-8", body: rpcSigned},
		{name: "ACS3 ok", auth: "ACS3-HMAC-SM3 " + acs3Fields},
		{name: "ROA ok, AK up to last colon", auth: "acs test:id:c2ln"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Method: "POST", RawPath: "/", RawQuery: tt.query, Host: "h", Header: http.Header{}, Body: []byte(tt.body)}
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			for k, v := range tt.hdr {
				r.Header.Set(k, v)
			}
			s, err := Parse(r)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
			if err != nil && err != tt.want && !strings.Contains(err.Error(), ": signature: ") {
				t.Errorf("wrapped error %q has no detail", err)
			}
			if err == nil && s.AccessKeyID == "" {
				t.Errorf("no AccessKeyID")
			}
		})
	}
	if _, err := Parse(nil); err != ErrMissingSignature {
		t.Errorf("Parse(nil) = %v", err)
	}
}

// TestROAEmptyQueryValue signs the two spellings of an empty query value by
// hand (Go "name", Node "name=") and checks that both verify.
func TestROAEmptyQueryValue(t *testing.T) {
	const head = "GET\napplication/json\n\n\nMon, 23 Nov 2026 02:10:08 GMT\n" +
		"x-acs-action:ListInstanceSnapshot\nx-acs-signature-nonce:n1\n"
	tests := []struct {
		resource string
		want     error
	}{
		{"/api/v2/x%20y?Empty&Order=a b", nil},  // Go tea / legacy Go
		{"/api/v2/x%20y?Empty=&Order=a b", nil}, // Node
		{"/api/v2/x y?Empty&Order=a b", nil},    // decoded path (legacy)
		{"/api/v2/x y?Empty=&Order=a b", nil},
		{"/api/v2/x%20y?Order=a b", ErrMismatch},
		{"/api/v2/x%20y?Empty=&Order=a+b", ErrMismatch},
		{"/api/v2/x%20y?Empty=&Order=a%20b", ErrMismatch},
	}
	for _, tt := range tests {
		mac := hmac.New(sha1.New, []byte(testSecret))
		mac.Write([]byte(head + tt.resource))
		r := &Request{
			Method: "GET", RawPath: "/api/v2/x%20y", RawQuery: "Order=a+b&Empty=", Host: "h",
			Header: http.Header{
				"Accept":                {"application/json"},
				"Date":                  {"Mon, 23 Nov 2026 02:10:08 GMT"},
				"X-Acs-Action":          {"ListInstanceSnapshot"},
				"X-Acs-Signature-Nonce": {"n1"},
				"User-Agent":            {"not signed"},
				"Authorization":         {"acs testid:" + base64.StdEncoding.EncodeToString(mac.Sum(nil))},
			},
		}
		s, err := Parse(r)
		if err != nil {
			t.Fatalf("%s: %v", tt.resource, err)
		}
		if err := s.Verify(testSecret); err != tt.want {
			t.Errorf("%s: Verify = %v, want %v", tt.resource, err, tt.want)
		}
		if want := time.Date(2026, 11, 23, 2, 10, 8, 0, time.UTC); !s.Time.Equal(want) || s.Nonce != "n1" {
			t.Errorf("Time %v Nonce %q", s.Time, s.Nonce)
		}
	}
}

func TestSchemeString(t *testing.T) {
	for s, want := range map[Scheme]string{SchemeRPC: "RPC", SchemeACS3: "ACS3", SchemeROA: "ROA", 0: "Scheme(0)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), want)
		}
	}
}

// FuzzParse feeds arbitrary request parts to Parse, Verify and StringToSign
// and checks that nothing panics and that only the documented errors come
// back. Under plain "go test" only the seed corpus runs.
func FuzzParse(f *testing.F) {
	f.Add("POST", "/", "", "", "", "", "")
	f.Add("GET", "/", rpcSigned, "", "", "", "")
	f.Add("POST", "/", "", "", formContentType, "x-acs-date", rpcSigned+"&Timestamp=2026-11-23T02%3A09%3A12Z")
	f.Add("POST", "/a%zz", "a=%zz", "acs testid:c2ln", "", "x-acs-signature-method", "")
	f.Add("GET", "/a%20b", "B=&A=1", "acs a:b:c", "application/json", "Content-MD5", "{}")
	f.Add("POST", "", "x=1", "ACS3-HMAC-SM3 "+acs3Fields, "", "x-acs-content-sha256", "body")
	f.Add("POST", "/", "", "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=;host;;,Signature=zz", "", "Host", "")
	f.Add("PUT", "/", "", "ACS3-X ,,,==", "", "", "")
	for _, c := range loadCaptures(f) {
		r := c.req
		f.Add(r.Method, r.RawPath, r.RawQuery, r.Header.Get("Authorization"),
			r.Header.Get("Content-Type"), "x-acs-date", string(r.Body))
	}
	f.Fuzz(func(t *testing.T, method, path, query, auth, ctype, hname, body string) {
		h := http.Header{}
		if auth != "" {
			h.Set("Authorization", auth)
		}
		if ctype != "" {
			h.Set("Content-Type", ctype)
		}
		if hname != "" {
			h[hname] = []string{body, query} // non-canonical keys and several values too
		}
		r := &Request{Method: method, RawPath: path, RawQuery: query, Host: "h", Header: h, Body: []byte(body)}
		s, err := Parse(r)
		if err != nil {
			if !errors.Is(err, ErrMissingSignature) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Fatalf("Parse: undocumented error %v", err)
			}
			return
		}
		if s.AccessKeyID == "" || s.Scheme < SchemeRPC || s.Scheme > SchemeROA {
			t.Fatalf("Parse accepted %+v", s)
		}
		switch err := s.Verify("testsecret"); err {
		case nil, ErrMismatch, ErrContentHashMismatch:
		default:
			t.Fatalf("Verify: undocumented error %v", err)
		}
		if sts := s.StringToSign(); s.Scheme == SchemeACS3 && !strings.HasPrefix(sts, s.Algorithm+"\n") {
			t.Fatalf("StringToSign = %q", sts)
		}
	})
}
