package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/param"
	"github.com/snapstack/snapstack/internal/signature"
)

// edgeServer has an ECS-like version with a harmless and a destructive
// action, and one ROA route, each recording what ran.
func edgeServer(t *testing.T, ran *[]string) *httptest.Server {
	s := New(&fakeKeys{seen: map[string]bool{}}, func(err error) bool { return errors.Is(err, errUnknown) }, clock.Real{},
		slog.New(slog.NewTextHandler(io.Discard, nil)), DefaultOptions())
	rec := func(name string) Handler {
		return func(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
			*ran = append(*ran, name+" "+p.String("DiskId")+p.String("Evil"))
			return &param.Response{}, nil
		}
	}
	s.Register(ECSVersion, map[string]Handler{"DescribeDisks": rec("DescribeDisks"), "DeleteDisk": rec("DeleteDisk")})
	s.RegisterROA(DSWPrefix, []ROARoute{{"POST", "/api/v2/instances/{InstanceId}/snapshots", "CreateInstanceSnapshot",
		func(ctx context.Context, r *ROARequest) (any, error) {
			*ran = append(*ran, "CreateInstanceSnapshot "+r.Path["InstanceId"]+" "+string(r.Body))
			return &param.Response{}, nil
		}}})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func signedRPC(action string) url.Values {
	p := url.Values{"Action": {action}, "Version": {ECSVersion}, "RegionId": {"cn-hangzhou"}, "DiskId": {"d-1"}}
	signature.SignRPC("POST", p, "AK1", "secret1", "", time.Now().UTC())
	return p
}

// An RPC HMAC-SHA1 signature covers neither the path nor a JSON body,
// while the Apsara route takes the action from the path: a request signed
// for Action=DescribeDisks must not run DeleteDisk when posted to
// .../Ecs/DeleteDisk.
func TestApsaraActionMustBeSigned(t *testing.T) {
	var ran []string
	ts := edgeServer(t, &ran)
	p := signedRPC("DescribeDisks")
	resp, err := http.Post(ts.URL+"/apsara/route/Ecs/DeleteDisk", "application/x-www-form-urlencoded", strings.NewReader(p.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "IncompleteSignature") || len(ran) > 0 {
		t.Errorf("request signed for DescribeDisks on .../DeleteDisk: ran %v, %d %s; want 400 IncompleteSignature", ran, resp.StatusCode, b)
	}
}

// An RPC signature (query only) must not be accepted on a ROA route,
// where the path and the JSON body, which it does not cover, select and
// drive the action.
func TestRPCSignatureRefusedOnROARoute(t *testing.T) {
	var ran []string
	ts := edgeServer(t, &ran)
	p := signedRPC("DescribeDisks")
	resp, err := http.Post(ts.URL+"/api/v2/instances/dsw-victim/snapshots?"+p.Encode(), "application/json",
		strings.NewReader(`{"SnapshotName":"attacker","ImageUrl":"evil.example/x:y","Overwrite":true}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "IncompleteSignature") || len(ran) > 0 {
		t.Errorf("RPC-signed DescribeDisks on a ROA route: ran %v, %d %s; want 400 IncompleteSignature", ran, resp.StatusCode, b)
	}
}

// A ROA ("acs AK:sig") signature without Content-MD5 does not cover the
// body: an RPC request signed that way must not take parameters (even
// Action) from a form body.
func TestROASignatureUnsignedFormBodyRefused(t *testing.T) {
	var ran []string
	ts := edgeServer(t, &ran)
	req, _ := http.NewRequest("POST", ts.URL+"/?Version="+ECSVersion+"&RegionId=cn-hangzhou", strings.NewReader("Action=DeleteDisk&DiskId=d-victim"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	req.Header.Set("x-acs-signature-nonce", "review-nonce-1")
	// The signature covers method, headers and path+query only (body absent
	// here: it is added after signing).
	sts := strings.Join([]string{"POST", "", "", "application/x-www-form-urlencoded", req.Header.Get("Date"),
		"x-acs-signature-nonce:review-nonce-1\n/?RegionId=cn-hangzhou&Version=" + ECSVersion}, "\n")
	m := hmac.New(sha1.New, []byte("secret1"))
	m.Write([]byte(sts))
	req.Header.Set("Authorization", "acs AK1:"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "IncompleteSignature") || len(ran) > 0 {
		t.Errorf("unsigned form body: ran %v, %d %s; want 400 IncompleteSignature", ran, resp.StatusCode, b)
	}
}

// TestBodyTimeout: a request body must arrive within BodyTimeout, but an
// action that works longer than that keeps its context: the deadline is
// lifted once the body is read (an expired read deadline would cancel
// the request's context through net/http's background read).
func TestBodyTimeout(t *testing.T) {
	opts := DefaultOptions()
	opts.BodyTimeout = 200 * time.Millisecond
	s := New(&fakeKeys{seen: map[string]bool{}}, func(err error) bool { return errors.Is(err, errUnknown) }, clock.Real{},
		slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	s.Register(ECSVersion, map[string]Handler{"DescribeDisks": func(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
		time.Sleep(500 * time.Millisecond)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return &param.Response{}, nil
	}})
	ts := httptest.NewServer(s)
	defer ts.Close()

	resp, err := http.Post(ts.URL+"/", "application/x-www-form-urlencoded", strings.NewReader(signedRPC("DescribeDisks").Encode()))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("an action longer than the body timeout: %d %s", resp.StatusCode, raw)
	}

	// A body that never comes: the connection is not held.
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nAction=")
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	io.ReadAll(nc) // the reply, then the close
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a stalled body held the connection for %v", d)
	}
}
