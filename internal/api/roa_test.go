package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/clock"
)

type roaReply struct {
	RequestId      string
	Success        bool
	HttpStatusCode int
	Instance       string
	Query          string
	Body           string
}

func (r *roaReply) SetRequestID(id string) { r.RequestId, r.Success, r.HttpStatusCode = id, true, 200 }

func newROAServer(t *testing.T) *httptest.Server {
	s := New(&fakeKeys{seen: map[string]bool{}}, func(err error) bool { return errors.Is(err, errUnknown) }, clock.Real{},
		slog.New(slog.NewTextHandler(io.Discard, nil)), DefaultOptions())
	s.RegisterROA("/api/v2/", []ROARoute{
		{"POST", "/api/v2/instances/{InstanceId}/snapshots", "CreateInstanceSnapshot", func(ctx context.Context, r *ROARequest) (any, error) {
			if r.Caller.AccountID != "acc1" {
				t.Errorf("caller %+v", r.Caller)
			}
			return &roaReply{Instance: r.Path["InstanceId"], Body: string(r.Body)}, nil
		}},
		{"GET", "/api/v2/instances/{InstanceId}/snapshots", "ListInstanceSnapshot", func(ctx context.Context, r *ROARequest) (any, error) {
			return &roaReply{Instance: r.Path["InstanceId"], Query: r.Query.Encode()}, nil
		}},
		{"GET", "/api/v2/instances/{InstanceId}", "GetInstance", func(ctx context.Context, r *ROARequest) (any, error) {
			if r.Path["InstanceId"] == "boom" {
				return nil, errors.New("disk /secret/path exploded")
			}
			return nil, apierr.New("ValidationError", 404, "The instance does not exist.")
		}},
	})
	s.Mount("/v2/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "registry") }))
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// callROA calls like the pai-dsw SDK does: CallApi with ROA params.
func callROA(t *testing.T, ts *httptest.Server, alg, secret, action, method, path string, query map[string]*string, body map[string]any) (map[string]any, error) {
	t.Helper()
	cfg := &openapi.Config{AccessKeyId: tea.String("AK1"), AccessKeySecret: tea.String(secret),
		Endpoint: tea.String(strings.TrimPrefix(ts.URL, "http://")), Protocol: tea.String("http")}
	if alg != "" {
		cfg.SignatureAlgorithm = tea.String(alg)
	}
	c, err := openapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req := &openapiutil.OpenApiRequest{Query: query}
	if body != nil {
		req.Body = body
	}
	params := &openapiutil.Params{Action: tea.String(action), Version: tea.String("2022-01-01"), Protocol: tea.String("HTTPS"),
		Pathname: tea.String(path), Method: tea.String(method), AuthType: tea.String("AK"), Style: tea.String("ROA"),
		ReqBodyType: tea.String("json"), BodyType: tea.String("json")}
	res, err := c.CallApi(params, req, &dara.RuntimeOptions{})
	if err != nil {
		return nil, err
	}
	b, _ := res["body"].(map[string]any)
	return b, nil
}

func TestROARoutingBothSignatures(t *testing.T) {
	ts := newROAServer(t)
	for _, alg := range []string{"", "v2"} {
		t.Run("alg="+alg, func(t *testing.T) {
			b, err := callROA(t, ts, alg, "secret1", "CreateInstanceSnapshot", "POST", "/api/v2/instances/dsw%201%2A~%C3%A9/snapshots", nil,
				map[string]any{"SnapshotName": "s", "Overwrite": true})
			if err != nil {
				t.Fatal(err)
			}
			if b["Instance"] != "dsw 1*~é" || b["Success"] != true || fmt.Sprint(b["HttpStatusCode"]) != "200" || b["RequestId"] == "" ||
				!strings.Contains(b["Body"].(string), `"Overwrite":true`) {
				t.Fatalf("reply = %v", b)
			}
			b, err = callROA(t, ts, alg, "secret1", "ListInstanceSnapshot", "GET", "/api/v2/instances/dsw-1/snapshots",
				map[string]*string{"PageNumber": tea.String("2"), "Order": tea.String("ASC")}, nil)
			if err != nil || b["Query"] != "Order=ASC&PageNumber=2" {
				t.Fatalf("list = %v %v", b, err)
			}
		})
	}
}

func TestROAErrors(t *testing.T) {
	ts := newROAServer(t)
	check := func(err error, status int, code string) {
		t.Helper()
		var se *tea.SDKError
		if !errors.As(err, &se) || tea.IntValue(se.StatusCode) != status || tea.StringValue(se.Code) != code {
			t.Errorf("error = %v, want %d %s", err, status, code)
		}
	}
	_, err := callROA(t, ts, "", "secret1", "GetInstance", "GET", "/api/v2/instances/dsw-none", nil, nil)
	check(err, 404, "ValidationError")
	_, err = callROA(t, ts, "", "secret1", "GetInstance", "GET", "/api/v2/instances/boom", nil, nil)
	check(err, 500, "InternalError")
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("500 leaks its cause: %v", err)
	}
	_, err = callROA(t, ts, "v2", "secret1", "Nope", "PUT", "/api/v2/instances/dsw-1/nope", nil, nil)
	check(err, 404, "InvalidAction.NotFound")
	_, err = callROA(t, ts, "", "wrong", "GetInstance", "GET", "/api/v2/instances/dsw-1", nil, nil)
	check(err, 400, "SignatureDoesNotMatch")
	_, err = callROA(t, ts, "v2", "wrong", "GetInstance", "GET", "/api/v2/instances/dsw-1", nil, nil)
	check(err, 400, "SignatureDoesNotMatch")

	resp, err := http.Get(ts.URL + "/api/v2/instances/dsw-1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"Success":false`) || !strings.Contains(string(b), `"HttpStatusCode":400`) {
		t.Errorf("unsigned: %d %s", resp.StatusCode, b)
	}
	resp, _ = http.Get(ts.URL + "/v2/")
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "registry" {
		t.Errorf("mount: %q", b)
	}
}
