// Package e2e drives an in-process snapstack with the official, unmodified
// Alibaba Cloud Go SDKs.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	ecs4 "github.com/alibabacloud-go/ecs-20140526/v4/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	legacy "github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/snapstack/snapstack/internal/api"
	"github.com/snapstack/snapstack/internal/app"
	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/ecs"
)

const (
	testKey    = "LTAItestkey0001"
	testSecret = "test-secret-0001"
)

type env struct {
	t     *testing.T
	app   *app.App
	dir   string
	clock clock.Clock
}

type option func(*app.Config)

func withClock(c clock.Clock) option { return func(cfg *app.Config) { cfg.Clock = c } }
func withDelay(d time.Duration) option {
	return func(cfg *app.Config) { cfg.ECS.TransitionDelay = d }
}
func withGCInterval(d time.Duration) option { return func(cfg *app.Config) { cfg.GCInterval = d } }
func withQuota(n int) option                { return func(cfg *app.Config) { cfg.ECS.SnapshotQuotaPerDisk = n } }

// start runs snapstack on a free port with a data directory of the test.
func start(t *testing.T, dir string, opts ...option) *env {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := app.Config{Listen: "127.0.0.1:0", NBDListen: "127.0.0.1:0", DataDir: dir, Admin: true, ECS: ecs.DefaultConfig(), API: api.DefaultOptions(),
		AccessKeyID: testKey, AccessKeySecret: testSecret}
	cfg.ECS.TransitionDelay = 0
	for _, o := range opts {
		o(&cfg)
	}
	a, err := app.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	e := &env{t: t, app: a, dir: dir, clock: cfg.Clock}
	t.Cleanup(func() { a.Close() })
	return e
}

// legacyClient is the v1 Go SDK (RPC HMAC-SHA1).
func (e *env) legacyClient() *legacy.Client {
	c, err := legacy.NewClientWithAccessKey("cn-hangzhou", testKey, testSecret)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// point aims a legacy request at the test server.
func (e *env) point(r interface {
	SetDomain(string)
	SetScheme(string)
}) {
	r.SetDomain(e.app.Addr)
	r.SetScheme("http")
}

// teaClient is the v4 tea SDK; alg "" is its default (ACS3-HMAC-SHA256),
// "v2" switches to RPC HMAC-SHA1.
func (e *env) teaClient(alg string) *ecs4.Client {
	cfg := &openapi.Config{AccessKeyId: tea.String(testKey), AccessKeySecret: tea.String(testSecret),
		Endpoint: tea.String(e.app.Addr), Protocol: tea.String("http"), RegionId: tea.String("cn-hangzhou")}
	if alg != "" {
		cfg.SignatureAlgorithm = tea.String(alg)
	}
	c, err := ecs4.NewClient(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// runInstance creates one running instance with one data disk and returns
// the instance ID, its system disk and its data disk.
func (e *env) runInstance() (inst, sys, data string) {
	e.t.Helper()
	c := e.legacyClient()
	req := legacy.CreateRunInstancesRequest()
	e.point(req)
	req.ImageId = "ubuntu_22_04_x64_20G_alibase_20240101.vhd"
	req.InstanceType = "ecs.g7.large"
	req.ZoneId = "cn-hangzhou-i"
	req.SystemDiskCategory = "cloud_essd"
	req.SystemDiskSize = "40"
	req.DataDisk = &[]legacy.RunInstancesDataDisk{{Size: "20", Category: "cloud_essd"}}
	resp, err := c.RunInstances(req)
	if err != nil {
		e.t.Fatalf("RunInstances: %v", err)
	}
	inst = resp.InstanceIdSets.InstanceIdSet[0]
	dreq := legacy.CreateDescribeDisksRequest()
	e.point(dreq)
	dreq.InstanceId = inst
	dresp, err := c.DescribeDisks(dreq)
	if err != nil {
		e.t.Fatalf("DescribeDisks: %v", err)
	}
	for _, d := range dresp.Disks.Disk {
		if d.Type == "system" {
			sys = d.DiskId
		} else {
			data = d.DiskId
		}
	}
	if sys == "" || data == "" {
		e.t.Fatalf("disks of %s: %+v", inst, dresp.Disks.Disk)
	}
	return inst, sys, data
}

// admin calls an admin action and returns the top-level fields of its reply.
func (e *env) admin(action string, params map[string]string) map[string]string {
	e.t.Helper()
	c := e.legacyClient()
	r := requests.NewCommonRequest()
	r.Domain, r.Scheme, r.Version, r.ApiName, r.Method = e.app.Addr, "http", api.AdminVersion, action, "POST"
	r.QueryParams = params
	resp, err := c.ProcessCommonRequest(r)
	if err != nil {
		e.t.Fatalf("%s: %v", action, err)
	}
	var m map[string]any
	if err := json.Unmarshal(resp.GetHttpContentBytes(), &m); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// setState calls the admin action through the legacy SDK's CommonRequest.
func (e *env) setState(typ, id, state string, on bool) {
	e.t.Helper()
	c := e.legacyClient()
	r := requests.NewCommonRequest()
	r.Domain, r.Scheme, r.Version, r.ApiName, r.Method = e.app.Addr, "http", api.AdminVersion, "SetState", "POST"
	v := "false"
	if on {
		v = "true"
	}
	r.QueryParams = map[string]string{"ResourceType": typ, "ResourceId": id, "State": state, "Value": v}
	if _, err := c.ProcessCommonRequest(r); err != nil {
		e.t.Fatalf("SetState %s %s %s: %v", typ, id, state, err)
	}
}
