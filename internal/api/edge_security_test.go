package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/signature"
)

// signACS3 signs req (ACS3-HMAC-SHA256) covering only the listed headers.
func signACS3(t *testing.T, req *http.Request, body []byte, signed []string, ak, secret string) {
	t.Helper()
	sum := sha256.Sum256(body)
	req.Header.Set("x-acs-content-sha256", hex.EncodeToString(sum[:]))
	sh := strings.Join(signed, ";")
	req.Header.Set("Authorization", "ACS3-HMAC-SHA256 Credential="+ak+",SignedHeaders="+sh+",Signature=00")
	rp, rq, _ := strings.Cut(req.URL.RequestURI(), "?")
	s, err := signature.Parse(&signature.Request{Method: req.Method, RawPath: rp, RawQuery: rq, Host: req.URL.Host, Header: req.Header, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s.StringToSign()))
	req.Header.Set("Authorization", "ACS3-HMAC-SHA256 Credential="+ak+",SignedHeaders="+sh+",Signature="+hex.EncodeToString(m.Sum(nil)))
}

// TestACS3ActionHeaderMustBeSigned: on the RPC edge the action and
// version of an ACS3 request may come from x-acs-action / x-acs-version.
// Were they taken unsigned, anyone on the path could turn a signed
// DescribeDisks into DeleteDisk (same DiskId).
func TestACS3ActionHeaderMustBeSigned(t *testing.T) {
	var ran []string
	ts := captureServer(t, clock.Real{}, DefaultOptions(), &ran)
	req, _ := http.NewRequest("POST", ts.URL+"/?DiskId=d-victim", nil)
	req.Header.Set("x-acs-version", ECSVersion)
	req.Header.Set("x-acs-date", time.Now().UTC().Format("2006-01-02T15:04:05Z"))
	req.Header.Set("x-acs-signature-nonce", "audit-acs3-action-1")
	signACS3(t, req, nil, []string{"host", "x-acs-content-sha256", "x-acs-date", "x-acs-signature-nonce", "x-acs-version"}, "AK1", "secret1")
	req.Header.Set("x-acs-action", "DeleteDisk") // added after signing: not covered
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"Code":"SignatureDoesNotMatch"`) || len(ran) > 0 {
		t.Errorf("unsigned x-acs-action: %d ran %v %s; want 400 SignatureDoesNotMatch", resp.StatusCode, ran, b)
	}
}

// TestRPCActionComesFromSignedParameters: an RPC signature covers the
// parameters, not the headers, so an x-acs-action header never names the
// action of an RPC request.
func TestRPCActionComesFromSignedParameters(t *testing.T) {
	var ran []string
	ts := captureServer(t, clock.Real{}, DefaultOptions(), &ran)
	q := url.Values{"DiskId": {"d-victim"}, "Format": {"JSON"}, "Version": {ECSVersion}}
	signature.SignRPC("GET", q, "AK1", "secret1", "", time.Time{})
	req, _ := http.NewRequest("GET", ts.URL+"/?"+q.Encode(), nil)
	req.Header.Set("x-acs-action", "DeleteDisk")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"Code":"MissingParameter"`) || len(ran) > 0 {
		t.Errorf("RPC request without Action ran %v (%d %s); want 400 MissingParameter", ran, resp.StatusCode, b)
	}
}

// stalledBody sends a request whose declared body never arrives and
// reports how long the server held the connection (capped at 6s).
func stalledBody(t *testing.T, ts *httptest.Server, method, path string) time.Duration {
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, method+" "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
	nc.SetReadDeadline(time.Now().Add(6 * time.Second))
	start := time.Now()
	io.ReadAll(nc)
	return time.Since(start)
}

// TestStalledBodyIsCutOnEveryPath: BodyTimeout bounds a body that never
// arrives on every path, /healthz and the mounted (registry) ones too,
// which answer without reading the body: net/http then drains up to 256
// KiB of it, which without a deadline let an unauthenticated client hold
// a goroutine and a socket for ever per connection.
func TestStalledBodyIsCutOnEveryPath(t *testing.T) {
	opts := DefaultOptions()
	opts.BodyTimeout = 200 * time.Millisecond
	var ran []string
	s := captureServer(t, clock.Real{}, opts, &ran).Config.Handler.(*Server)
	s.Mount("/v2/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unauthorized", http.StatusUnauthorized) // like a registry refusing an anonymous push
	}))
	ts := httptest.NewUnstartedServer(s)
	// As internal/app configures it.
	ts.Config.ReadHeaderTimeout, ts.Config.IdleTimeout = 30*time.Second, 2*time.Minute
	ts.Start()
	defer ts.Close()
	if d := stalledBody(t, ts, "POST", "/"); d > 3*time.Second {
		t.Fatalf("control: API path held %v", d)
	}
	for _, p := range []string{"/healthz", "/v2/ns/repo/blobs/uploads/"} {
		if d := stalledBody(t, ts, "POST", p); d > 3*time.Second {
			t.Errorf("%s: a stalled body held the connection for %v (no deadline)", p, d)
		}
	}
}

// TestManySignedHeadersAreRefused: a forged ACS3 request (a known
// AccessKeyId, no secret) naming thousands of SignedHeaders among
// thousands of headers used to cost seconds of CPU (names times headers)
// before it was refused; SignedHeaders is now bounded, and the server
// takes 64 KiB of headers at most (internal/app).
func TestManySignedHeadersAreRefused(t *testing.T) {
	var ran []string
	ts := captureServer(t, clock.Real{}, DefaultOptions(), &ran)
	var b strings.Builder
	b.WriteString("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n")
	b.WriteString("Authorization: ACS3-HMAC-SHA256 Credential=AK1,SignedHeaders=" + strings.TrimSuffix(strings.Repeat("z;", 2_000), ";") + ",Signature=00\r\n")
	for i := 0; i < 2_000; i++ {
		fmt.Fprintf(&b, "X%06d: \r\n", i)
	}
	b.WriteString("\r\n")
	status, body := rawDo(t, ts, b.String())
	if status != 400 || !strings.Contains(body, `"Code":"IncompleteSignature"`) || len(ran) > 0 {
		t.Errorf("forged request: %d %s; want 400 IncompleteSignature", status, body)
	}
}
