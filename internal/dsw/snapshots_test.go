package dsw

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/oci"
)

func TestSnapshotToEmbeddedRegistry(t *testing.T) {
	f := newFx(t, Config{}, nil)
	id := f.instance(nil)
	upper := filepath.Join(f.dir, "dsw", "instances", id, "upper")
	os.WriteFile(filepath.Join(upper, "hello.txt"), []byte("hi"), 0o644)
	p := map[string]string{"InstanceId": id}
	body := map[string]any{"SnapshotName": "snap-v1", "ImageUrl": host + "/ns/repo", "SnapshotDescription": "first",
		"Labels": []map[string]string{{"Key": "k1", "Value": "v1"}}, "ExcludePaths": []string{"/tmp"}}
	r := f.must(f.svc.CreateInstanceSnapshot, p, body)
	snp := r["SnapshotId"].(string)
	if !strings.HasPrefix(snp, "snp-") || r["InstanceId"] != id {
		t.Fatalf("reply = %v", r)
	}
	m := f.wait(id, snp)
	if m["Status"] != SnapshotAvailable || m["ImageUrl"] != host+"/ns/repo:snap-v1" || !strings.HasPrefix(m["ImageId"].(string), "sha256:") {
		t.Fatalf("snapshot = %v", m)
	}
	if ex := m["ExcludePaths"].([]any); len(ex) != 1 || ex[0] != "/tmp" {
		t.Errorf("ExcludePaths = %v", ex)
	}
	if l := pulled(t, f, host+"/ns/repo:snap-v1"); l["k1"] != "v1" {
		t.Errorf("labels = %v", l)
	}
	if ls := f.must(f.svc.GetInstance, p, nil)["LatestSnapshot"].(map[string]any); ls["ImageUrl"] != host+"/ns/repo:snap-v1" || ls["RepositoryUrl"] != host+"/ns/repo" {
		t.Errorf("LatestSnapshot = %v", ls)
	}

	// The tag exists now: Overwrite false is refused before anything is
	// recorded; true replaces the image.
	_, err := f.call(f.svc.CreateInstanceSnapshot, p, body)
	isValidation(t, err, 400)
	body["Overwrite"] = true
	os.WriteFile(filepath.Join(upper, "second.txt"), []byte("2"), 0o644)
	m2 := f.wait(id, f.must(f.svc.CreateInstanceSnapshot, p, body)["SnapshotId"].(string))
	if m2["Status"] != SnapshotAvailable || m2["ImageId"] == m["ImageId"] {
		t.Fatalf("overwrite = %v", m2)
	}

	// Paging, newest first by default.
	for i := 0; i < 3; i++ {
		f.clock.Advance(1e9)
		body["SnapshotName"] = "v" + string(rune('a'+i))
		f.wait(id, f.must(f.svc.CreateInstanceSnapshot, p, body)["SnapshotId"].(string))
	}
	q := url.Values{"PageNumber": {"2"}, "PageSize": {"2"}}
	res, err := f.svc.ListInstanceSnapshot(context.Background(), &Call{AccountID: "acc1", Path: p, Query: q})
	if err != nil {
		t.Fatal(err)
	}
	l := res.(*SnapshotList)
	if l.TotalCount != 5 || len(l.Snapshots) != 2 || l.Snapshots[0].SnapshotName != "va" {
		t.Fatalf("page 2 = %d %+v", l.TotalCount, l.Snapshots)
	}

	f.must(f.svc.DeleteInstanceSnapshot, map[string]string{"InstanceId": id, "SnapshotId": snp}, nil)
	_, err = f.call(f.svc.GetInstanceSnapshot, map[string]string{"InstanceId": id, "SnapshotId": snp}, nil)
	isValidation(t, err, 404)
	pulled(t, f, host+"/ns/repo:snap-v1") // the image stays
}

// TestSnapshotBadInput: every bad input is a ValidationError and nothing
// is recorded or pushed.
func TestSnapshotBadInput(t *testing.T) {
	f := newFx(t, Config{}, nil)
	id := f.instance(nil)
	p := map[string]string{"InstanceId": id}
	ok := map[string]any{"SnapshotName": "s1", "ImageUrl": host + "/ns/repo:t"}
	with := func(k string, v any) map[string]any {
		b := map[string]any{}
		for kk, vv := range ok {
			b[kk] = vv
		}
		b[k] = v
		return b
	}
	for _, b := range []map[string]any{
		with("SnapshotName", ""), with("SnapshotName", "Bad_Name"), with("ImageUrl", ""), with("ImageUrl", "ns/repo:t"),
		with("ImageUrl", "http://"+host+"/ns/repo:t"), with("ImageUrl", host+"/ns/../repo:t"), with("ExcludePaths", []string{"/a/../../etc"}),
		with("ExcludePaths", []string{"etc"}), with("Labels", []map[string]string{{"Key": "a"}, {"Key": "a"}}), with("Overwrite", "yes"),
		with("SnapshotDescription", strings.Repeat("d", 1025)),
	} {
		_, err := f.call(f.svc.CreateInstanceSnapshot, p, b)
		isValidation(t, err, 400)
	}
	_, err := f.call(f.svc.CreateInstanceSnapshot, map[string]string{"InstanceId": "dsw-none"}, ok)
	isValidation(t, err, 404)
	f.store.View(context.Background(), func(tx meta.Tx) error {
		if _, n, _ := tx.ListDSWSnapshots(meta.DSWSnapshotFilter{}); n != 0 {
			t.Errorf("%d snapshots recorded", n)
		}
		return nil
	})
	if ents, _ := os.ReadDir(filepath.Join(f.dir, "registry", "repos")); len(ents) != 0 {
		t.Errorf("something was pushed: %v", ents)
	}
}

// blocking holds Build until released, to observe a snapshot under way.
type blocking struct {
	Builder
	started, release chan struct{}
}

func (b blocking) Build(ctx context.Context, s oci.Spec) (oci.Result, error) {
	close(b.started)
	select {
	case <-b.release:
	case <-ctx.Done():
		return oci.Result{}, ctx.Err()
	}
	return b.Builder.Build(ctx, s)
}

func TestSnapshotUnderWay(t *testing.T) {
	bl := blocking{started: make(chan struct{}), release: make(chan struct{})}
	f := newFx(t, Config{}, func(b Builder) Builder { bl.Builder = b; return bl })
	id := f.instance(nil)
	p := map[string]string{"InstanceId": id}
	snp := f.must(f.svc.CreateInstanceSnapshot, p, map[string]any{"SnapshotName": "s1", "ImageUrl": host + "/ns/repo"})["SnapshotId"].(string)
	<-bl.started
	sp := map[string]string{"InstanceId": id, "SnapshotId": snp}
	if st := f.must(f.svc.GetInstanceSnapshot, sp, nil)["Status"]; st != SnapshotPushing {
		t.Fatalf("status = %v", st)
	}
	_, err := f.call(f.svc.CreateInstanceSnapshot, p, map[string]any{"SnapshotName": "s2", "ImageUrl": host + "/ns/repo"})
	isValidation(t, err, 400)
	_, err = f.call(f.svc.DeleteInstance, p, nil)
	isValidation(t, err, 400)

	// Restart: the snapshot left Pushing is Failed/Interrupted.
	f.svc.Close()
	svc2, err := New(f.store, bl.Builder, f.clock, f.svc.cfg, f.svc.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc2.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.svc = svc2
	m := f.must(f.svc.GetInstanceSnapshot, sp, nil)
	if m["Status"] != SnapshotFailed || m["ReasonCode"] != ReasonInterrupted {
		t.Fatalf("after restart = %v", m)
	}
	// A failing push is recorded with its reason.
	m = f.wait(id, f.must(f.svc.CreateInstanceSnapshot, p, map[string]any{"SnapshotName": "s3", "ImageUrl": "127.0.0.1:1/ns/repo", "Overwrite": true})["SnapshotId"].(string))
	if m["Status"] != SnapshotFailed || m["ReasonCode"] != ReasonPush || m["ReasonMessage"] == "" {
		t.Fatalf("unreachable registry = %v", m)
	}
	f.must(f.svc.DeleteInstance, p, nil)
}
