package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/param"
	"github.com/snapstack/snapstack/internal/signature"
)

// captureKeys knows testid/testsecret (the captures' key) and AK1/secret1.
type captureKeys struct{ seen map[string]bool }

func (k *captureKeys) Lookup(ctx context.Context, id string) (string, string, error) {
	switch id {
	case "testid":
		return "testsecret", "acc-test", nil
	case "AK1":
		return "secret1", "acc1", nil
	}
	return "", "", errUnknown
}

func (k *captureKeys) UseNonce(ctx context.Context, keyID, nonce string, now, exp time.Time) (bool, error) {
	if k.seen[keyID+"/"+nonce] {
		return false, nil
	}
	k.seen[keyID+"/"+nonce] = true
	return true, nil
}

// captureServer serves every capture's action and records what ran.
func captureServer(t *testing.T, clk clock.Clock, opts Options, ran *[]string) *httptest.Server {
	s := New(&captureKeys{seen: map[string]bool{}}, func(err error) bool { return errors.Is(err, errUnknown) }, clk,
		slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	rec := func(name string) Handler {
		return func(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
			*ran = append(*ran, name+" "+c.AccountID+" DiskId="+p.String("DiskId"))
			return &param.Response{}, nil
		}
	}
	acts := map[string]Handler{}
	for _, a := range []string{"CreateSnapshot", "DescribeSnapshots", "DeleteSnapshot", "DeleteDisk", "DescribeDisks"} {
		acts[a] = rec(a)
	}
	s.Register(ECSVersion, acts)
	s.Register("2020-09-30", map[string]Handler{"CreateSnapshot": rec("ecd.CreateSnapshot")})
	roa := func(name string) ROAHandler {
		return func(ctx context.Context, r *ROARequest) (any, error) {
			*ran = append(*ran, name+" "+r.Caller.AccountID+" "+r.Path["InstanceId"])
			return &param.Response{}, nil
		}
	}
	s.RegisterROA(DSWPrefix, []ROARoute{
		{"POST", "/api/v2/instances/{InstanceId}/snapshots", "CreateInstanceSnapshot", roa("CreateInstanceSnapshot")},
		{"GET", "/api/v2/instances/{InstanceId}/snapshots", "ListInstanceSnapshot", roa("ListInstanceSnapshot")},
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// rawDo writes a raw HTTP/1.1 request and returns status and body.
func rawDo(t *testing.T, ts *httptest.Server, raw string) (int, string) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(nc, raw)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// captureWire rebuilds a capture's request as sent on the wire.
func captureWire(t *testing.T, data []byte) string {
	i := bytes.Index(data, []byte("\n---- replied ----"))
	head, body, _ := strings.Cut(string(data[:i]), "\n\n")
	head = strings.ReplaceAll(strings.ReplaceAll(head, "\r\n", "\n"), "\n", "\r\n") + "\r\nConnection: close\r\n\r\n"
	if strings.Contains(strings.ToLower(head), "transfer-encoding: chunked") {
		var b strings.Builder
		for s := body; len(s) > 0; {
			n := min(len(s), 100)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, s[:n])
			s = s[n:]
		}
		b.WriteString("0\r\n\r\n")
		body = b.String()
	}
	return head + body
}

// TestCapturesThroughEdge: every official-SDK capture, replayed at its
// own time through the whole edge (production options), must be accepted.
func TestCapturesThroughEdge(t *testing.T) {
	files, _ := filepath.Glob("../signature/testdata/captures/*.txt")
	n := 0
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "client_") {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			data, _ := os.ReadFile(f)
			wire := captureWire(t, data)
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire)))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(req.Body)
			rp, rq, _ := strings.Cut(req.RequestURI, "?")
			sg, err := signature.Parse(&signature.Request{Method: req.Method, RawPath: rp, RawQuery: rq, Host: req.Host, Header: req.Header, Body: body})
			if err != nil {
				t.Fatal(err)
			}
			var ran []string
			ts := captureServer(t, clock.NewFake(sg.Time), DefaultOptions(), &ran)
			status, reply := rawDo(t, ts, wire)
			if status != 200 || len(ran) != 1 {
				t.Errorf("status %d ran %v: %s", status, ran, reply)
			}
		})
	}
	if n != 43 {
		t.Errorf("%d captures", n)
	}
}
