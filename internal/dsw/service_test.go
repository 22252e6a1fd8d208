package dsw

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/meta/sqlstore"
	"github.com/snapstack/snapstack/internal/oci"
	"github.com/snapstack/snapstack/internal/registry"
)

// Tests run the real service: SQLite, the oci builder and the embedded
// registry reached in-process under the host "dsw.test:9090".

const host = "dsw.test:9090"

type fx struct {
	t     *testing.T
	svc   *Service
	reg   *registry.Registry
	clock *clock.Fake
	store meta.Store
	dir   string
}

func newFx(t *testing.T, cfg Config, wrap func(Builder) Builder) *fx {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(filepath.Join(dir, "registry"), registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b Builder = oci.NewBuilder(oci.Config{Embedded: reg.Transport()})
	if wrap != nil {
		b = wrap(b)
	}
	cfg.Dir = filepath.Join(dir, "dsw")
	clk := clock.NewFake(time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC))
	svc, err := New(store, b, clk, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &fx{t: t, svc: svc, reg: reg, clock: clk, store: store, dir: dir}
	t.Cleanup(func() { svc.Close(); store.Close() })
	return f
}

func (f *fx) call(fn func(context.Context, *Call) (any, error), path map[string]string, body any) (map[string]any, error) {
	f.t.Helper()
	raw, _ := json.Marshal(body)
	res, err := fn(context.Background(), &Call{AccountID: "acc1", Host: host, Path: path, Query: map[string][]string{}, Body: raw})
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	b, _ := json.Marshal(res)
	json.Unmarshal(b, &out)
	return out, nil
}

func (f *fx) must(fn func(context.Context, *Call) (any, error), path map[string]string, body any) map[string]any {
	f.t.Helper()
	m, err := f.call(fn, path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fx) instance(body map[string]any) string {
	f.t.Helper()
	return f.must(f.svc.CreateInstance, nil, body)["InstanceId"].(string)
}

// wait polls GetInstanceSnapshot until the status is final.
func (f *fx) wait(inst, snp string) map[string]any {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		m := f.must(f.svc.GetInstanceSnapshot, map[string]string{"InstanceId": inst, "SnapshotId": snp}, nil)
		if st := m["Status"]; st == SnapshotAvailable || st == SnapshotFailed {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatal("snapshot did not finish")
	return nil
}

func TestInstanceLifecycle(t *testing.T) {
	f := newFx(t, Config{TransitionDelay: time.Minute}, nil)
	id := f.instance(map[string]any{"InstanceName": "nb_1", "WorkspaceId": "ws", "Priority": 3, "Labels": []map[string]string{{"Key": "k", "Value": "v"}},
		"EnvironmentVariables": map[string]string{"A": "1"}, "RequestedResource": map[string]any{"CPU": "2"}})
	p := map[string]string{"InstanceId": id}
	if st := f.must(f.svc.GetInstance, p, nil)["Status"]; st != StatusCreating {
		t.Fatalf("status = %v", st)
	}
	if fi, err := os.Stat(filepath.Join(f.dir, "dsw", "instances", id, "upper")); err != nil || !fi.IsDir() {
		t.Fatalf("upper dir: %v", err)
	}
	_, err := f.call(f.svc.CreateInstanceSnapshot, p, map[string]any{"SnapshotName": "s", "ImageUrl": host + "/ns/r"})
	isValidation(t, err, 400) // Creating
	f.clock.Advance(time.Minute)
	m := f.must(f.svc.GetInstance, p, nil)
	if m["Status"] != StatusRunning || m["Priority"].(float64) != 3 || m["RequestedResource"].(map[string]any)["CPU"] != "2" || m["UserId"] != "acc1" {
		t.Fatalf("instance = %v", m)
	}
	_, err = f.call(f.svc.StartInstance, p, nil)
	isValidation(t, err, 400) // already running
	f.must(f.svc.StopInstance, p, nil)
	f.clock.Advance(time.Minute)
	if st := f.must(f.svc.GetInstance, p, nil)["Status"]; st != StatusStopped {
		t.Fatalf("after stop: %v", st)
	}
	f.must(f.svc.StartInstance, p, nil)
	l := f.must(f.svc.ListInstances, nil, nil)
	if l["TotalCount"].(float64) != 1 {
		t.Fatalf("list = %v", l)
	}
	f.must(f.svc.DeleteInstance, p, nil)
	if _, err := os.Stat(filepath.Join(f.dir, "dsw", "instances", id)); !os.IsNotExist(err) {
		t.Errorf("instance directory kept: %v", err)
	}
	_, err = f.call(f.svc.GetInstance, p, nil)
	isValidation(t, err, 404)
}

func TestCreateInstanceErrors(t *testing.T) {
	hostRoot := t.TempDir()
	os.Mkdir(filepath.Join(hostRoot, "nb"), 0o755)
	os.Symlink(t.TempDir(), filepath.Join(hostRoot, "escape")) // a symlink out of the root
	f := newFx(t, Config{HostPathRoots: []string{hostRoot}}, nil)
	for _, body := range []map[string]any{
		{"InstanceName": "bad-name"}, {"Priority": 10}, {"Accessibility": "OPEN"}, {"ImageUrl": "ubuntu"},
		{"EnvironmentVariables": map[string]string{"1A": "x"}}, {"Labels": []map[string]string{{"Key": ""}}},
		{"Labels": []map[string]string{{"Key": UpperDirLabel, "Value": "/etc"}}},
		{"Labels": []map[string]string{{"Key": UpperDirLabel, "Value": hostRoot + "/../etc"}}},
		{"Labels": []map[string]string{{"Key": UpperDirLabel, "Value": hostRoot + "/missing"}}},
		{"Labels": []map[string]string{{"Key": UpperDirLabel, "Value": hostRoot + "/escape"}}},
		{"RequestedResource": []int{1}}, {"Priority": "high"},
	} {
		_, err := f.call(f.svc.CreateInstance, nil, body)
		isValidation(t, err, 400)
	}
	id := f.instance(map[string]any{"Labels": []map[string]string{{"Key": UpperDirLabel, "Value": filepath.Join(hostRoot, "nb")}}})
	f.must(f.svc.DeleteInstance, map[string]string{"InstanceId": id}, nil)
	if _, err := os.Stat(filepath.Join(hostRoot, "nb")); err != nil {
		t.Errorf("a host path was removed with its instance: %v", err)
	}
}

func pulled(t *testing.T, f *fx, ref string) map[string]string {
	t.Helper()
	r, _ := name.ParseReference(ref)
	img, err := remote.Image(r, remote.WithTransport(f.reg.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.Config.Labels
}
