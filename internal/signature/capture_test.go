package signature

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Captures are copies of shared/spec/captures: request line, headers verbatim
// (LF line ends), blank line, raw body (already de-chunked), then a line
// "---- replied ----" and the reply.

const (
	captureDir    = "testdata/captures"
	replyMarker   = "\n---- replied ----"
	testAK        = "testid"
	testSecret    = "testsecret"
	wantCaptures  = 43 // request captures in the spec
	wrongSecret   = "wrongsecret"
	captureLayout = "2006-01-02"
)

// capturePrefixes maps a file name prefix to the scheme and algorithm
// expected; err_ files are stripped of "err_" first.
var capturePrefixes = []struct {
	prefix string
	scheme Scheme
	alg    string
}{
	{"rpc1_", SchemeRPC, "HMAC-SHA1"},
	{"acs3sm3_", SchemeACS3, "ACS3-HMAC-SM3"},
	{"acs3_", SchemeACS3, "ACS3-HMAC-SHA256"},
	{"roa1_", SchemeROA, "HMAC-SHA1"},
}

type capture struct {
	name   string
	scheme Scheme
	alg    string
	req    *Request
}

// loadCaptures returns every request capture of testdata/captures; files
// that are not request captures (client_reactions_*) are skipped.
func loadCaptures(t testing.TB) []capture {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(captureDir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []capture
	for _, f := range files {
		name := filepath.Base(f)
		kind := strings.TrimPrefix(name, "err_")
		c := capture{name: name}
		for _, p := range capturePrefixes {
			if strings.HasPrefix(kind, p.prefix) {
				c.scheme, c.alg = p.scheme, p.alg
				break
			}
		}
		if c.scheme == 0 {
			continue // e.g. client_reactions_*.txt
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if c.req, err = parseCapture(data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, c)
	}
	return out
}

// parseCapture rebuilds the request as it was on the wire (CRLF line ends;
// chunked framing when the client sent Transfer-Encoding: chunked) and reads
// it back with net/http.ReadRequest, as a Go server would.
func parseCapture(data []byte) (*Request, error) {
	i := bytes.Index(data, []byte(replyMarker))
	if i < 0 {
		return nil, errors.New("no reply marker: not a request capture")
	}
	head, body, ok := strings.Cut(string(data[:i]), "\n\n")
	if !ok {
		return nil, errors.New("no blank line after the headers")
	}
	head = strings.ReplaceAll(strings.TrimRight(head, "\r"), "\r\n", "\n")
	head = strings.ReplaceAll(head, "\n", "\r\n") + "\r\n\r\n"

	hdr, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
	if err != nil {
		return nil, fmt.Errorf("reading head: %v", err)
	}
	wire := head + body
	if len(hdr.TransferEncoding) > 0 && hdr.TransferEncoding[0] == "chunked" {
		wire = head + chunked(body)
	}
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire)))
	if err != nil {
		return nil, fmt.Errorf("reading request: %v", err)
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, fmt.Errorf("reading body: %v", err)
	}
	if string(b) != body {
		return nil, fmt.Errorf("body read back is %d bytes, capture has %d", len(b), len(body))
	}
	rawPath, rawQuery, _ := strings.Cut(req.RequestURI, "?")
	return &Request{
		Method:   req.Method,
		RawPath:  rawPath,
		RawQuery: rawQuery,
		Host:     req.Host,
		Header:   req.Header,
		Body:     b,
	}, nil
}

// chunked frames s with chunked transfer coding, in chunks of up to 100 bytes.
func chunked(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		n := min(len(s), 100)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, s[:n])
		s = s[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

func TestCaptures(t *testing.T) {
	caps := loadCaptures(t)
	if len(caps) != wantCaptures {
		t.Errorf("loaded %d request captures, want %d", len(caps), wantCaptures)
	}
	day, _ := time.Parse(captureLayout, "2026-11-23")
	for _, c := range caps {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse(c.req)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s.Scheme != c.scheme || s.Algorithm != c.alg || s.AccessKeyID != testAK {
				t.Errorf("Parse = %v %q %q, want %v %q %q", s.Scheme, s.Algorithm, s.AccessKeyID, c.scheme, c.alg, testAK)
			}
			if err := s.Verify(testSecret); err != nil {
				t.Errorf("Verify(%q) = %v\nStringToSign:\n%s", testSecret, err, s.StringToSign())
			}
			if err := s.Verify(wrongSecret); err != ErrMismatch {
				t.Errorf("Verify(%q) = %v, want ErrMismatch", wrongSecret, err)
			}
			if got := s.Time.UTC().Truncate(24 * time.Hour); !got.Equal(day) {
				t.Errorf("Time = %v, want on %v", s.Time, day)
			}
			legacyROA := strings.HasPrefix(c.name, "roa1_go_legacy_")
			if (s.Nonce == "") != legacyROA {
				t.Errorf("Nonce = %q (legacy ROA sends none)", s.Nonce)
			}
			if sts := strings.HasSuffix(c.name, "_STS.txt"); (s.SecurityToken != "") != sts {
				t.Errorf("SecurityToken = %q for %s", s.SecurityToken, c.name)
			}
			if (s.Params != nil) != (c.scheme == SchemeRPC) {
				t.Errorf("Params = %v, want non-nil only for RPC", s.Params)
			}
		})
	}
}

// readCapture reads one capture file by name.
func readCapture(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(captureDir, name))
}
