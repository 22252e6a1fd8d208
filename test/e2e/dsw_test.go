package e2e

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	oasvc "github.com/alibabacloud-go/openapi-util/service"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/snapstack/snapstack/internal/clock"
)

// PAI-DSW through the generic client (CallApi with the ROA parameters the
// pai-dsw-20220101 SDK builds), against Debian's docker-registry on
// loopback and the embedded registry, inspected with skopeo.

type dswClient struct {
	t *testing.T
	c *openapi.Client
}

func (e *env) dswClient(alg string) *dswClient {
	cfg := &openapi.Config{AccessKeyId: tea.String(testKey), AccessKeySecret: tea.String(testSecret),
		Endpoint: tea.String(e.app.Addr), Protocol: tea.String("http")}
	if alg != "" {
		cfg.SignatureAlgorithm = tea.String(alg)
	}
	c, err := openapi.NewClient(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return &dswClient{t: e.t, c: c}
}

func (d *dswClient) call(action, method, path string, query, body map[string]any) (map[string]any, error) {
	req := &openapiutil.OpenApiRequest{}
	if query != nil {
		req.Query = oasvc.Query(query)
	}
	if body != nil {
		req.Body = oasvc.ParseToMap(body)
	}
	params := &openapiutil.Params{Action: tea.String(action), Version: tea.String("2022-01-01"), Protocol: tea.String("HTTPS"),
		Pathname: tea.String(path), Method: tea.String(method), AuthType: tea.String("AK"), Style: tea.String("ROA"),
		ReqBodyType: tea.String("json"), BodyType: tea.String("json")}
	res, err := d.c.CallApi(params, req, &dara.RuntimeOptions{})
	if err != nil {
		return nil, err
	}
	b, _ := res["body"].(map[string]any)
	return b, nil
}

func instPath(id string) string {
	return "/api/v2/instances/" + tea.StringValue(oasvc.GetEncodeParam(tea.String(id)))
}

func (d *dswClient) must(action, method, path string, query, body map[string]any) map[string]any {
	d.t.Helper()
	b, err := d.call(action, method, path, query, body)
	if err != nil {
		d.t.Fatalf("%s: %v", action, err)
	}
	return b
}

// snapshot creates a snapshot and waits until it is Available or Failed.
func (d *dswClient) snapshot(inst string, body map[string]any) map[string]any {
	d.t.Helper()
	id := fmt.Sprint(d.must("CreateInstanceSnapshot", "POST", instPath(inst)+"/snapshots", nil, body)["SnapshotId"])
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		m := d.must("GetInstanceSnapshot", "GET", instPath(inst)+"/snapshots/"+id, nil, nil)
		if m["Status"] == "Available" || m["Status"] == "Failed" {
			return m
		}
	}
	d.t.Fatalf("snapshot %s did not finish", id)
	return nil
}

func wantValidation(t *testing.T, err error, status int) {
	t.Helper()
	var se *tea.SDKError
	if !errors.As(err, &se) || tea.IntValue(se.StatusCode) != status || tea.StringValue(se.Code) != "ValidationError" {
		t.Errorf("error = %v, want ValidationError %d", err, status)
	}
}

// dockerRegistry runs Debian's docker-registry on a free loopback port and
// returns its host:port; it is killed by PID at the end of the test.
func dockerRegistry(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Skip("docker-registry is not installed (apt-get install docker-registry)")
	}
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo is not installed (apt-get install skopeo)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: %q}\n", filepath.Join(dir, "data"), addr)
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600)
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	log, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); cmd.Wait(); log.Close() })
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
	t.Fatalf("docker-registry did not start: %s", b)
	return ""
}

func skopeo(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("skopeo", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %v: %v\n%s", args, err, out)
	}
	return out
}

// inspect returns skopeo's view of an image: labels, layer media types,
// digest, and the raw manifest's media types.
func inspect(t *testing.T, ref string, extra ...string) (labels map[string]string, layers []string, digest, manifestType, configType string) {
	t.Helper()
	var info struct {
		Digest string
		Labels map[string]string
		Layers []string
	}
	args := append([]string{"inspect", "--tls-verify=false"}, extra...)
	if err := json.Unmarshal(skopeo(t, append(args, "docker://"+ref)...), &info); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		MediaType string
		Config    struct{ MediaType string }
		Layers    []struct{ MediaType string }
	}
	json.Unmarshal(skopeo(t, append(append(args, "--raw"), "docker://"+ref)...), &raw)
	if len(raw.Layers) != len(info.Layers) {
		t.Fatalf("skopeo inspect: %d layers, raw manifest %d", len(info.Layers), len(raw.Layers))
	}
	for _, l := range raw.Layers {
		layers = append(layers, l.MediaType)
	}
	return info.Labels, layers, info.Digest, raw.MediaType, raw.Config.MediaType
}

// topLayer copies the image with skopeo and returns the entries of its
// last layer (name -> content).
func topLayer(t *testing.T, ref string) map[string]string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "img")
	skopeo(t, "copy", "--src-tls-verify=false", "docker://"+ref, "dir:"+dir)
	var m struct{ Layers []struct{ Digest string } }
	b, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	json.Unmarshal(b, &m)
	f, err := os.Open(filepath.Join(dir, strings.TrimPrefix(m.Layers[len(m.Layers)-1].Digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		out[h.Name] = string(body)
		if h.Typeflag == tar.TypeSymlink {
			out[h.Name] = "-> " + h.Linkname
		}
	}
}

// fillUpper writes files into an instance's upper directory: regular
// files, a symlink, a deleted file (an overlay whiteout device when
// permitted, else an OCI .wh. file) and content under excluded paths.
func fillUpper(t *testing.T, upper string) {
	t.Helper()
	for p, body := range map[string]string{"etc/app.conf": "key=value\n", "bin/run.sh": "#!/bin/sh\n", "mnt/data/secret": "s", "tmp/scratch": "t"} {
		os.MkdirAll(filepath.Join(upper, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(upper, p), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("../etc/app.conf", filepath.Join(upper, "bin/conf"))
	if syscall.Mknod(filepath.Join(upper, "etc/deleted"), syscall.S_IFCHR, 0) != nil {
		os.WriteFile(filepath.Join(upper, "etc/.wh.deleted"), nil, 0o644)
	}
}

// TestDSWSnapshotDockerRegistry: the whole flow in ACS3 and "v2" signing.
func TestDSWSnapshotDockerRegistry(t *testing.T) {
	reg := dockerRegistry(t)
	e := start(t, "")
	for _, alg := range []string{"", "v2"} {
		t.Run("alg="+alg, func(t *testing.T) {
			d := e.dswClient(alg)
			d.t = t
			inst := fmt.Sprint(d.must("CreateInstance", "POST", "/api/v2/instances", nil, map[string]any{"InstanceName": "nb_" + alg, "EcsSpec": "ecs.c6.large"})["InstanceId"])
			if st := d.must("GetInstance", "GET", instPath(inst), nil, nil)["Status"]; st != "Running" {
				t.Fatalf("instance status %v", st)
			}
			fillUpper(t, filepath.Join(e.dir, "dsw", "instances", inst, "upper"))
			repo := reg + "/dsw/nb" + alg
			body := map[string]any{"SnapshotName": "snap-v1", "SnapshotDescription": "first", "ImageUrl": repo,
				"Labels": []map[string]string{{"Key": "team", "Value": "ml"}}, "ExcludePaths": []string{"/mnt/data", "/tmp/"}}
			m := d.snapshot(inst, body)
			if m["Status"] != "Available" || m["ImageUrl"] != repo+":snap-v1" {
				t.Fatalf("snapshot = %v", m)
			}
			labels, layers, digest, mt, ct := inspect(t, repo+":snap-v1")
			if labels["team"] != "ml" || len(layers) != 1 || layers[0] != "application/vnd.oci.image.layer.v1.tar+gzip" ||
				mt != "application/vnd.oci.image.manifest.v1+json" || ct != "application/vnd.oci.image.config.v1+json" || digest != m["ImageId"] {
				t.Fatalf("skopeo: labels %v layers %v digest %s (ImageId %v) manifest %s config %s", labels, layers, digest, m["ImageId"], mt, ct)
			}
			files := topLayer(t, repo+":snap-v1")
			if files["etc/app.conf"] != "key=value\n" || files["bin/conf"] != "-> ../etc/app.conf" {
				t.Errorf("layer files: %v", files)
			}
			if _, ok := files["etc/.wh.deleted"]; !ok {
				t.Errorf("deletion is not a whiteout: %v", files)
			}
			for name := range files {
				if strings.HasPrefix(name, "mnt/data") || strings.HasPrefix(name, "tmp/") || name == "etc/deleted" {
					t.Errorf("%s is in the layer", name)
				}
			}

			// Overwrite false: the existing tag is an error and stays; true replaces it.
			_, err := d.call("CreateInstanceSnapshot", "POST", instPath(inst)+"/snapshots", nil, body)
			wantValidation(t, err, 400)
			if _, _, d2, _, _ := inspect(t, repo+":snap-v1"); d2 != digest {
				t.Fatal("the tag changed without Overwrite")
			}
			os.WriteFile(filepath.Join(e.dir, "dsw", "instances", inst, "upper", "etc", "v2.txt"), []byte("2"), 0o644)
			body["Overwrite"] = true
			m2 := d.snapshot(inst, body)
			if _, _, d2, _, _ := inspect(t, repo+":snap-v1"); m2["Status"] != "Available" || d2 == digest || d2 != m2["ImageId"] {
				t.Fatalf("overwrite: %v, registry digest %s", m2, d2)
			}
			if _, ok := topLayer(t, repo+":snap-v1")["etc/v2.txt"]; !ok {
				t.Error("the replaced image lacks the new file")
			}

			// An instance on the snapshot as base image: two layers.
			inst2 := fmt.Sprint(d.must("CreateInstance", "POST", "/api/v2/instances", nil, map[string]any{"ImageUrl": repo + ":snap-v1"})["InstanceId"])
			os.WriteFile(filepath.Join(e.dir, "dsw", "instances", inst2, "upper", "two"), []byte("2"), 0o644)
			if m := d.snapshot(inst2, map[string]any{"SnapshotName": "on-base", "ImageUrl": repo}); m["Status"] != "Available" {
				t.Fatalf("snapshot on base = %v", m)
			}
			if _, layers, _, _, _ := inspect(t, repo+":on-base"); len(layers) != 2 {
				t.Errorf("layers on base = %v", layers)
			}

			// Paging, newest first; delete.
			l := d.must("ListInstanceSnapshot", "GET", instPath(inst)+"/snapshots", map[string]any{"PageNumber": 2, "PageSize": 1, "Order": "DESC"}, nil)
			snaps, _ := l["Snapshots"].([]any)
			if fmt.Sprint(l["TotalCount"]) != "2" || len(snaps) != 1 || snaps[0].(map[string]any)["SnapshotId"] != m["SnapshotId"] {
				t.Fatalf("page 2 = %v", l)
			}
			d.must("DeleteInstanceSnapshot", "DELETE", instPath(inst)+"/snapshots/"+fmt.Sprint(m["SnapshotId"]), nil, nil)
			_, err = d.call("GetInstanceSnapshot", "GET", instPath(inst)+"/snapshots/"+fmt.Sprint(m["SnapshotId"]), nil, nil)
			wantValidation(t, err, 404)
			d.must("StopInstance", "PUT", instPath(inst)+"/stop", nil, nil)
			d.must("DeleteInstance", "DELETE", instPath(inst), nil, nil)
		})
	}
}

// TestDSWBadInput: each bad input is a ValidationError and nothing is
// pushed.
func TestDSWBadInput(t *testing.T) {
	reg := dockerRegistry(t)
	e := start(t, "")
	d := e.dswClient("")
	inst := fmt.Sprint(d.must("CreateInstance", "POST", "/api/v2/instances", nil, map[string]any{})["InstanceId"])
	good := func(k string, v any) map[string]any {
		b := map[string]any{"SnapshotName": "s1", "ImageUrl": reg + "/bad/repo"}
		b[k] = v
		return b
	}
	for _, b := range []map[string]any{
		good("ImageUrl", "not a reference"), good("ImageUrl", "ns/repo:tag"), good("ImageUrl", "http://"+reg+"/bad/repo:t"),
		good("ImageUrl", reg+"/bad/../etc:t"), good("ImageUrl", ""), good("SnapshotName", "My Snap"), good("SnapshotName", ""),
		good("ExcludePaths", []string{"/data/../../etc"}), good("ExcludePaths", []string{"relative"}),
		good("Labels", []map[string]string{{"Key": "", "Value": "v"}}), good("Overwrite", "yes"),
	} {
		_, err := d.call("CreateInstanceSnapshot", "POST", instPath(inst)+"/snapshots", nil, b)
		wantValidation(t, err, 400)
	}
	_, err := d.call("CreateInstanceSnapshot", "POST", instPath("dsw-unknown")+"/snapshots", nil, good("SnapshotName", "s1"))
	wantValidation(t, err, 404)
	_, err = d.call("CreateInstance", "POST", "/api/v2/instances", nil, map[string]any{"InstanceName": "bad-name"})
	wantValidation(t, err, 400)
	if l := d.must("ListInstanceSnapshot", "GET", instPath(inst)+"/snapshots", nil, nil); fmt.Sprint(l["TotalCount"]) != "0" {
		t.Errorf("snapshots recorded: %v", l)
	}
	resp, err := http.Get("http://" + reg + "/v2/_catalog")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "bad/") {
		t.Errorf("something was pushed: %s", b)
	}
}

// TestDSWEmbeddedRegistry pushes to the registry on the API listener and
// reads the image back with skopeo and the root AccessKey.
func TestDSWEmbeddedRegistry(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo is not installed")
	}
	e := start(t, "")
	d := e.dswClient("v2")
	inst := fmt.Sprint(d.must("CreateInstance", "POST", "/api/v2/instances", nil, map[string]any{"InstanceName": "embedded"})["InstanceId"])
	fillUpper(t, filepath.Join(e.dir, "dsw", "instances", inst, "upper"))
	ref := e.app.Addr + "/team/notebook:v1"
	m := d.snapshot(inst, map[string]any{"SnapshotName": "v1", "ImageUrl": ref, "Labels": []map[string]string{{"Key": "k", "Value": "v"}}, "ExcludePaths": []string{"/tmp"}})
	if m["Status"] != "Available" {
		t.Fatalf("snapshot = %v", m)
	}
	creds := "--creds=" + testKey + ":" + testSecret
	labels, layers, digest, mt, _ := inspect(t, ref, creds)
	if labels["k"] != "v" || len(layers) != 1 || digest != m["ImageId"] || mt != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("skopeo: %v %v %s %s", labels, layers, digest, mt)
	}
	if out, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "docker://"+ref).CombinedOutput(); err == nil {
		t.Errorf("anonymous inspect succeeded: %s", out)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "registry", "repos", "team+notebook", "tags", "v1")); err != nil {
		t.Errorf("tag not persisted in the data directory: %v", err)
	}
}

// TestDSWRegistryCollectsDeletedImages: an image pushed by a snapshot and
// then deleted with skopeo leaves no blob behind once the collector has
// run past the grace period; until then, and while the image is stored,
// its blobs stay.
func TestDSWRegistryCollectsDeletedImages(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo is not installed")
	}
	fake := clock.NewFake(time.Now())
	e := start(t, "", withClock(fake), withGCInterval(20*time.Millisecond))
	d := e.dswClient("v2")
	inst := fmt.Sprint(d.must("CreateInstance", "POST", "/api/v2/instances", nil, map[string]any{"InstanceName": "gc"})["InstanceId"])
	fillUpper(t, filepath.Join(e.dir, "dsw", "instances", inst, "upper"))
	ref := e.app.Addr + "/team/gc:v1"
	if m := d.snapshot(inst, map[string]any{"SnapshotName": "v1", "ImageUrl": ref}); m["Status"] != "Available" {
		t.Fatalf("snapshot = %v", m)
	}
	blobs := func() int {
		ents, err := os.ReadDir(filepath.Join(e.dir, "registry", "blobs", "sha256"))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	n := blobs()
	if n < 3 {
		t.Fatalf("%d blobs after the push, want manifest, config and layer", n)
	}
	fake.Advance(48 * time.Hour)
	time.Sleep(200 * time.Millisecond) // ten collections
	if got := blobs(); got != n {
		t.Fatalf("%d blobs of a stored image removed", n-got)
	}
	creds := "--creds=" + testKey + ":" + testSecret
	if out, err := exec.Command("skopeo", "delete", "--tls-verify=false", creds, "docker://"+ref).CombinedOutput(); err != nil {
		t.Fatalf("skopeo delete: %v: %s", err, out)
	}
	// Past the grace period (24 h from the blobs' last use), they go.
	fake.Advance(48 * time.Hour)
	for deadline := time.Now().Add(10 * time.Second); blobs() > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d blobs left after the image was deleted", blobs())
		}
	}
}
