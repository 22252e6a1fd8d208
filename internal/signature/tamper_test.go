package signature

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// cloneRequest returns a deep copy of r.
func cloneRequest(r *Request) *Request {
	c := *r
	c.Header = r.Header.Clone()
	c.Body = append([]byte(nil), r.Body...)
	return &c
}

// tamperQuery appends "x" to the first value of the first query parameter
// that is not Signature, SignatureMethod or AccessKeyId, and re-encodes the
// query Go-style. It reports false when there is no such parameter.
func tamperQuery(r *Request) (*Request, bool) {
	q, err := url.ParseQuery(r.RawQuery)
	if err != nil {
		return nil, false
	}
	for _, k := range sortedKeys(q) {
		switch k {
		case "Signature", "SignatureMethod", "AccessKeyId":
			continue
		}
		q[k][0] += "x"
		c := cloneRequest(r)
		c.RawQuery = q.Encode()
		return c, true
	}
	return nil, false
}

// tamperBody changes the first lower-case letter after the first '=' or ':'
// of the body (a value in a form or JSON body). It reports false for an
// empty body.
func tamperBody(r *Request) (*Request, bool) {
	start := strings.IndexAny(string(r.Body), "=:")
	if start < 0 {
		return nil, false
	}
	c := cloneRequest(r)
	for i := start; i < len(c.Body); i++ {
		if b := c.Body[i]; 'a' <= b && b <= 'y' {
			c.Body[i] = b + 1
			return c, true
		}
	}
	return nil, false
}

func TestTamper(t *testing.T) {
	for _, c := range loadCaptures(t) {
		t.Run(c.name, func(t *testing.T) {
			check := func(what string, r *Request, want error) {
				t.Helper()
				s, err := Parse(r)
				if err != nil {
					t.Fatalf("%s: Parse: %v", what, err)
				}
				if err := s.Verify(testSecret); err != want {
					t.Errorf("%s: Verify = %v, want %v", what, err, want)
				}
			}

			// Re-encoding the query differently (Go url.Values style) keeps
			// the signature valid: only decoded values are signed.
			if q, err := url.ParseQuery(c.req.RawQuery); err == nil && len(q) > 0 {
				r := cloneRequest(c.req)
				r.RawQuery = q.Encode()
				check("re-encoded query", r, nil)
			}
			if r, ok := tamperQuery(c.req); ok {
				check("query value", r, ErrMismatch)
			}

			if r, ok := tamperBody(c.req); ok {
				want := ErrMismatch // RPC: form body parameters are signed
				switch {
				case c.scheme == SchemeACS3:
					want = ErrContentHashMismatch
				case c.scheme == SchemeROA && r.Header.Get("Content-MD5") != "":
					want = ErrContentHashMismatch
				case c.scheme == SchemeROA:
					want = nil // tea ROA signs no body digest (protocol.md 4.3)
				}
				check("body byte", r, want)
				if c.scheme == SchemeACS3 {
					// Body and declared hash changed together: the signature catches it.
					s, _ := Parse(r)
					r.Header.Set("X-Acs-Content-Sha256", s.acs3PayloadHash())
					check("body byte and content hash", r, ErrMismatch)
				}
			}

			r := cloneRequest(c.req)
			r.Method = "PUT"
			check("method", r, ErrMismatch)

			if c.scheme != SchemeRPC { // RPC always signs "/" (%2F), whatever the path
				r = cloneRequest(c.req)
				r.RawPath = strings.Replace(r.RawPath, "snapshots", "snapshotz", 1) + "x"
				check("path", r, ErrMismatch)
			}

			r = cloneRequest(c.req)
			r.Header.Set("X-Acs-Action", "DeleteSnapshot")
			want := ErrMismatch
			if c.scheme == SchemeRPC {
				want = nil // RPC signs parameters only; Action is a parameter there
			}
			check("x-acs-action header", r, want)
		})
	}
}

func TestACS3HeaderVariants(t *testing.T) {
	base := parseCaptureFile(t, "acs3_go_tea_ecs_CreateSnapshot.txt").req

	// Spaces after the commas of the Authorization header are tolerated.
	r := cloneRequest(base)
	r.Header.Set("Authorization", strings.ReplaceAll(r.Header.Get("Authorization"), ",", ", "))
	if s, err := Parse(r); err != nil || s.Verify(testSecret) != nil {
		t.Errorf("spaces after commas: Parse err %v", err)
	}

	// An upper-case hex signature is accepted.
	r = cloneRequest(base)
	auth := r.Header.Get("Authorization")
	i := strings.LastIndex(auth, "=")
	r.Header.Set("Authorization", auth[:i+1]+strings.ToUpper(auth[i+1:]))
	if s, err := Parse(r); err != nil || s.Verify(testSecret) != nil {
		t.Errorf("upper-case hex: Parse err %v", err)
	}

	// The host is taken from Request.Host.
	r = cloneRequest(base)
	r.Host = "example.com"
	if s, err := Parse(r); err != nil || s.Verify(testSecret) != ErrMismatch {
		t.Errorf("other Host: want ErrMismatch (err %v)", err)
	}
}

// TestACS3UnsignedFields checks that x-acs-date, x-acs-signature-nonce and
// x-acs-security-token must be signed when present, since Signed reports
// them. The requests are signed with this package's own canonicalisation.
func TestACS3UnsignedFields(t *testing.T) {
	build := func(signed string, hdr map[string]string) *Signed {
		t.Helper()
		r := &Request{Method: "GET", RawPath: "/", RawQuery: "A=1", Host: "h:1", Header: http.Header{}}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		prefix := "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=" + signed + ",Signature="
		r.Header.Set("Authorization", prefix+"00")
		s, err := Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", prefix+signaturesFor(s, testSecret)[0])
		if s, err = Parse(r); err != nil {
			t.Fatal(err)
		}
		return s
	}
	date := map[string]string{"x-acs-date": "2026-11-23T02:09:31Z"}
	if err := build("host;x-acs-date", date).Verify(testSecret); err != nil {
		t.Errorf("signed date: %v", err)
	}
	for _, h := range acs3MustSign {
		s := build("host", map[string]string{h: "v"})
		if err := s.Verify(testSecret); err != ErrMismatch {
			t.Errorf("unsigned %s: Verify = %v, want ErrMismatch", h, err)
		}
	}
	if err := build("host", nil).Verify(testSecret); err != nil {
		t.Errorf("no optional headers: %v", err)
	}
}
