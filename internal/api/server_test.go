package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/param"
	"github.com/snapstack/snapstack/internal/signature"
)

var errUnknown = errors.New("unknown key")

type fakeKeys struct{ seen map[string]bool }

func (k *fakeKeys) Lookup(ctx context.Context, id string) (string, string, error) {
	if id != "AK1" {
		return "", "", errUnknown
	}
	return "secret1", "acc1", nil
}

func (k *fakeKeys) UseNonce(ctx context.Context, keyID, nonce string, now, exp time.Time) (bool, error) {
	if k.seen[nonce] {
		return false, nil
	}
	k.seen[nonce] = true
	return true, nil
}

type echo struct {
	param.Response
	Account string
	Items   struct{ Item []string }
}

func newTestServer(t *testing.T, clk clock.Clock) *httptest.Server {
	s := New(&fakeKeys{seen: map[string]bool{}}, func(err error) bool { return errors.Is(err, errUnknown) }, clk,
		slog.New(slog.NewTextHandler(io.Discard, nil)), DefaultOptions())
	s.Register("2014-05-26", map[string]Handler{
		"Echo": func(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
			r := &echo{Account: c.AccountID}
			r.Items.Item = []string{p.String("A"), p.String("B")}
			return r, nil
		},
		"Boom": func(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
			return nil, errors.New("disk /secret/path exploded")
		},
		"Quota": func(ctx context.Context, c ecs.Caller, p param.Values) (any, error) {
			return nil, apierr.QuotaExceedSnapshot
		},
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// post signs params with SignRPC and posts them as a form.
func post(t *testing.T, ts *httptest.Server, params url.Values, key, secret string, at time.Time, nonce string) (*http.Response, map[string]any, string) {
	t.Helper()
	signature.SignRPC("POST", params, key, secret, nonce, at)
	resp, err := http.Post(ts.URL+"/", "application/x-www-form-urlencoded", strings.NewReader(params.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(body, &m)
	return resp, m, string(body)
}

func base(action string) url.Values {
	return url.Values{"Action": {action}, "Version": {"2014-05-26"}, "Format": {"JSON"}, "A": {"x y"}, "B": {"快照"}}
}

func TestAuthAndErrors(t *testing.T) {
	now := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	ts := newTestServer(t, clock.NewFake(now))
	tests := []struct {
		name   string
		params url.Values
		key    string
		secret string
		at     time.Time
		nonce  string
		status int
		code   string
	}{
		{"ok", base("Echo"), "AK1", "secret1", now, "n1", 200, ""},
		{"wrong secret", base("Echo"), "AK1", "nope", now, "n2", 400, "SignatureDoesNotMatch"},
		{"unknown key", base("Echo"), "AK9", "secret1", now, "n3", 404, "InvalidAccessKeyId.NotFound"},
		{"old timestamp", base("Echo"), "AK1", "secret1", now.Add(-16 * time.Minute), "n4", 400, "InvalidTimeStamp.Expired"},
		{"future timestamp", base("Echo"), "AK1", "secret1", now.Add(16 * time.Minute), "n5", 400, "InvalidTimeStamp.Expired"},
		{"replayed nonce", base("Echo"), "AK1", "secret1", now, "n1", 400, "SignatureNonceUsed"},
		{"unknown action", base("Nope"), "AK1", "secret1", now, "n6", 404, "InvalidAction.NotFound"},
		{"unknown version", url.Values{"Action": {"Echo"}, "Version": {"1999-01-01"}}, "AK1", "secret1", now, "n7", 400, "InvalidVersion"},
		{"service error", base("Quota"), "AK1", "secret1", now, "n8", 403, "QuotaExceed.Snapshot"},
		{"internal error", base("Boom"), "AK1", "secret1", now, "n9", 500, "InternalError"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, m, raw := post(t, ts, tc.params, tc.key, tc.secret, tc.at, tc.nonce)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, raw)
			}
			if tc.status == 200 {
				if m["Account"] != "acc1" || m["RequestId"] == "" {
					t.Errorf("body %s", raw)
				}
				items := m["Items"].(map[string]any)["Item"].([]any)
				if items[0] != "x y" || items[1] != "快照" {
					t.Errorf("params decoded as %v", items)
				}
				return
			}
			for _, f := range []string{"RequestId", "HostId", "Code", "Message", "Recommend"} {
				if _, ok := m[f].(string); !ok {
					t.Errorf("error field %s is not a string: %s", f, raw)
				}
			}
			if m["Code"] != tc.code {
				t.Errorf("code %v, want %s", m["Code"], tc.code)
			}
			if strings.Contains(raw, "secret") || strings.Contains(raw, "exploded") {
				t.Errorf("error body leaks: %s", raw)
			}
		})
	}
}

func TestMissingSignature(t *testing.T) {
	ts := newTestServer(t, clock.Real{})
	resp, err := http.Get(ts.URL + "/?Action=Echo&Version=2014-05-26")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestXMLReply(t *testing.T) {
	now := time.Now().UTC()
	ts := newTestServer(t, clock.NewFake(now))
	p := base("Echo")
	p.Set("Format", "XML")
	resp, _, raw := post(t, ts, p, "AK1", "secret1", now, "x1")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	for _, want := range []string{"<EchoResponse>", "<RequestId>", "<Items><Item>x y</Item><Item>快照</Item></Items>", "</EchoResponse>"} {
		if !strings.Contains(raw, want) {
			t.Errorf("XML %s lacks %s", raw, want)
		}
	}
	if strings.Contains(raw, "<V>") || strings.Contains(raw, "<Response>") {
		t.Errorf("XML has wrapper elements: %s", raw)
	}
}

func TestHealthz(t *testing.T) {
	ts := newTestServer(t, clock.Real{})
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
}
