package signature

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2026, 11, 23, 2, 9, 12, 0, time.UTC)

// strictEncode encodes params the pop-core way (strict RFC 3986, %20).
func strictEncode(params url.Values) string {
	var parts []string
	for _, k := range sortedKeys(params) {
		for _, v := range params[k] {
			parts = append(parts, pct(k)+"="+pct(v))
		}
	}
	return strings.Join(parts, "&")
}

func apiParams() url.Values {
	return url.Values{
		"Action":       {"CreateSnapshot"},
		"Version":      {"2014-05-26"},
		"DiskId":       {"d-bp1abc"},
		"SnapshotName": {"快照 (v1)!'*~+/=&%"},
		"Tag.1.Key":    {"env"},
		"Empty":        {""},
	}
}

func TestSignRPCRoundTrip(t *testing.T) {
	form := http.Header{"Content-Type": {formContentType}}
	tests := []struct {
		name   string
		method string
		query  func(url.Values) string
		body   func(url.Values) string
		header http.Header
	}{
		{"GET query Go encoding", "GET", url.Values.Encode, nil, nil},
		{"GET query strict encoding", "GET", strictEncode, nil, nil},
		{"POST query, empty form body", "POST", url.Values.Encode, nil, form},
		{"POST form body", "POST", nil, strictEncode, form},
		{"POST split query and body", "POST",
			func(p url.Values) string { return "DiskId=" + url.QueryEscape(p.Get("DiskId")) },
			func(p url.Values) string { q := cloneValues(p); q.Del("DiskId"); return q.Encode() },
			form},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := apiParams()
			SignRPC(tt.method, p, testAK, testSecret, "nonce-1", testTime)
			r := &Request{Method: tt.method, RawPath: "/", Host: "h", Header: tt.header}
			if tt.query != nil {
				r.RawQuery = tt.query(p)
			}
			if tt.body != nil {
				r.Body = []byte(tt.body(p))
			}
			s, err := Parse(r)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s.Scheme != SchemeRPC || s.AccessKeyID != testAK || s.Nonce != "nonce-1" || !s.Time.Equal(testTime) {
				t.Errorf("Parse = %v %q %q %v", s.Scheme, s.AccessKeyID, s.Nonce, s.Time)
			}
			if err := s.Verify(testSecret); err != nil {
				t.Errorf("Verify: %v\n%s", err, s.StringToSign())
			}
			if err := s.Verify(wrongSecret); err != ErrMismatch {
				t.Errorf("Verify(wrong) = %v", err)
			}
			s.Params.Set("SnapshotName", "other")
			if err := s.Verify(testSecret); err != ErrMismatch {
				t.Errorf("Verify after changing a parameter = %v", err)
			}
		})
	}
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// TestSignRPCReproducesV1 re-signs the parameters of vector V1 and expects
// the captured signature.
func TestSignRPCReproducesV1(t *testing.T) {
	s := parseCaptureFile(t, "rpc1_go_legacy_ecs_CreateSnapshot.txt")
	p := cloneValues(s.Params)
	want := p.Get("Signature")
	p.Set("Signature", "stale")
	SignRPC("POST", p, testAK, testSecret, s.Nonce, time.Now())
	if got := p.Get("Signature"); got != want || len(p["Signature"]) != 1 {
		t.Errorf("Signature = %q, want %q", p["Signature"], want)
	}
	if p.Get("Timestamp") != "2026-11-23T02:09:12Z" {
		t.Errorf("existing Timestamp replaced: %q", p.Get("Timestamp"))
	}
}

func TestSignRPCDefaults(t *testing.T) {
	p := url.Values{"Action": {"DescribeSnapshots"}}
	before := time.Now().Add(-time.Second)
	SignRPC("POST", p, "ak", "sk", "", time.Time{})
	for k, want := range map[string]string{"AccessKeyId": "ak", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0"} {
		if p.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, p.Get(k), want)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(p.Get("SignatureNonce")) {
		t.Errorf("SignatureNonce = %q, want 32 hex digits", p.Get("SignatureNonce"))
	}
	ts, err := time.Parse(rpcTimestampForm, p.Get("Timestamp"))
	if err != nil || ts.Before(before.Truncate(time.Second)) || ts.After(time.Now()) {
		t.Errorf("Timestamp = %q (%v), want now in UTC", p.Get("Timestamp"), err)
	}
	s, err := Parse(&Request{Method: "POST", RawPath: "/", RawQuery: p.Encode()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify("sk"); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// TestRPCDuplicateValues: several values of one name are all signed, in
// order, query values first.
func TestRPCDuplicateValues(t *testing.T) {
	p := url.Values{"A": {"1", "2"}}
	SignRPC("GET", p, testAK, testSecret, "n", testTime)
	if !strings.Contains(rpcCanonical(p), "A=1&A=2&AccessKeyId=") {
		t.Errorf("canonical = %s", rpcCanonical(p))
	}
	sig := p.Get("Signature")
	p.Del("Signature")
	p.Del("A")
	r := &Request{
		Method: "GET", RawPath: "/", RawQuery: "A=1&Signature=" + url.QueryEscape(sig) + "&" + p.Encode(),
		Header: http.Header{"Content-Type": {formContentType}}, Body: []byte("A=2"),
	}
	s, err := Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(testSecret); err != nil {
		t.Errorf("Verify: %v", err)
	}
	r.RawQuery, r.Body = strings.Replace(r.RawQuery, "A=1", "A=2", 1), []byte("A=1")
	if s, _ = Parse(r); s.Verify(testSecret) != ErrMismatch {
		t.Errorf("swapped order still verifies")
	}
}
