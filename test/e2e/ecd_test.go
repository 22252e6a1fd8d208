package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	ecd "github.com/aliyun/alibaba-cloud-sdk-go/services/ecd"
	legacy "github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/snapstack/snapstack/internal/signature"
)

func (e *env) ecdClient() *ecd.Client {
	c, err := ecd.NewClientWithAccessKey("cn-hangzhou", testKey, testSecret)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) desktopStatus(c *ecd.Client, id string) (status, sys, data string) {
	e.t.Helper()
	req := ecd.CreateDescribeDesktopsRequest()
	e.point(req)
	req.DesktopId = &[]string{id}
	resp, err := c.DescribeDesktops(req)
	if err != nil || len(resp.Desktops) != 1 {
		e.t.Fatalf("DescribeDesktops: %v", err)
	}
	d := resp.Desktops[0]
	for _, disk := range d.Disks {
		if disk.DiskType == "SYSTEM" {
			sys = disk.DiskId
		} else {
			data = disk.DiskId
		}
	}
	return d.DesktopStatus, sys, data
}

func (e *env) waitDesktop(c *ecd.Client, id, status string) (sys, data string) {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, sys, data := e.desktopStatus(c, id)
		if st == status {
			return sys, data
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("desktop %s is %s, want %s", id, st, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) waitEDSSnapshot(c *ecd.Client, id string) ecd.Snapshot {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		req := ecd.CreateDescribeSnapshotsRequest()
		e.point(req)
		req.SnapshotId = id
		resp, err := c.DescribeSnapshots(req)
		if err != nil || len(resp.Snapshots) != 1 {
			e.t.Fatalf("DescribeSnapshots %s: %v", id, err)
		}
		if s := resp.Snapshots[0]; s.Status == "ACCOMPLISHED" {
			return s
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("snapshot %s not accomplished", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEDSSnapshotResetOverNBD: a desktop's data disk, written over NBD,
// snapshotted through the official ecd SDK, overwritten, then restored by
// ResetSnapshot byte for byte.
func TestEDSSnapshotResetOverNBD(t *testing.T) {
	needTool(t, "qemu-io")
	needTool(t, "nbdcopy")
	e := start(t, "")
	c := e.ecdClient()
	cr := ecd.CreateCreateDesktopsRequest()
	e.point(cr)
	cr.OfficeSiteId, cr.BundleId, cr.DesktopName = "cn-hangzhou+dir-1", "b-default", "dev-desktop"
	cr.QueryParams["SystemDiskSize"], cr.QueryParams["DataDiskSize"] = "1", "1"
	created, err := c.CreateDesktops(cr)
	if err != nil || len(created.DesktopId) != 1 {
		t.Fatalf("CreateDesktops: %v %+v", err, created)
	}
	desk := created.DesktopId[0]
	_, data := e.waitDesktop(c, desk, "Running")

	e.qemuIO(data, "write -P 0x3c 0 2M", "write -P 0x77 900M 64k", "flush")
	before := e.dump(data)

	sr := ecd.CreateCreateSnapshotRequest()
	e.point(sr)
	sr.DesktopId, sr.SnapshotName, sr.SourceDiskType, sr.Description = desk, "before-upgrade", "data", "nightly"
	snap, err := c.CreateSnapshot(sr)
	if err != nil {
		t.Fatal(err)
	}
	s := e.waitEDSSnapshot(c, snap.SnapshotId)
	if s.SourceDiskType != "DATA" || s.SnapshotType != "USER" || s.Progress != "100%" || s.SourceDiskSize != "1" || s.DesktopId != desk {
		t.Errorf("snapshot = %+v", s)
	}

	// The desktop must be stopped to reset.
	e.qemuIO(data, "write -P 0xee 0 4M", "flush")
	rr := ecd.CreateResetSnapshotRequest()
	e.point(rr)
	rr.SnapshotId = snap.SnapshotId
	_, err = c.ResetSnapshot(rr)
	wantLegacyError(t, err, 403, "IncorrectDesktopStatus")
	stop := ecd.CreateStopDesktopsRequest()
	e.point(stop)
	stop.DesktopId = &[]string{desk}
	if _, err := c.StopDesktops(stop); err != nil {
		t.Fatal(err)
	}
	e.waitDesktop(c, desk, "Stopped")
	if _, err := c.ResetSnapshot(rr); err != nil {
		t.Fatal(err)
	}
	startReq := ecd.CreateStartDesktopsRequest()
	e.point(startReq)
	startReq.DesktopId = &[]string{desk}
	if _, err := c.StartDesktops(startReq); err != nil {
		t.Fatal(err)
	}
	e.waitDesktop(c, desk, "Running")
	if e.dump(data) != before {
		t.Fatal("ResetSnapshot did not restore the disk byte for byte")
	}

	// Rules of seed 000.
	bad := ecd.CreateCreateSnapshotRequest()
	e.point(bad)
	bad.DesktopId, bad.SourceDiskType = desk, "system"
	for _, name := range []string{"a", strings.Repeat("n", 128), "auto-x", "1abc", "bad:colon"} {
		bad.SnapshotName = name
		_, err := c.CreateSnapshot(bad)
		wantLegacyError(t, err, 400, "InvalidSnapshotName.Malformed")
	}
	// A fresh request each time: the legacy SDK keeps a parameter once set.
	for _, tc := range []struct {
		desktop, kind, desc string
		status              int
		code                string
	}{
		{desk, "system", strings.Repeat("d", 129), 400, "InvalidDescription.Malformed"},
		{desk, "boot", "", 400, "InvalidSourceDiskType.ValueNotSupported"},
		{"ecd-none", "system", "", 404, "InvalidDesktopId.NotFound"},
	} {
		r := ecd.CreateCreateSnapshotRequest()
		e.point(r)
		r.DesktopId, r.SourceDiskType, r.SnapshotName, r.Description = tc.desktop, tc.kind, strings.Repeat("n", 127), tc.desc
		_, err = c.CreateSnapshot(r)
		wantLegacyError(t, err, tc.status, tc.code)
	}

	// EDS snapshots are not ECS snapshots, and ECS actions do not see
	// the desktop, its disks or its snapshots (one ID space, not one
	// set of resources).
	if e.countECSSnapshots() != 0 {
		t.Error("an EDS snapshot shows in ECS DescribeSnapshots")
	}
	lc := e.legacyClient()
	ecsSnap := legacy.CreateCreateSnapshotRequest()
	e.point(ecsSnap)
	ecsSnap.DiskId = data
	_, err = lc.CreateSnapshot(ecsSnap)
	wantLegacyError(t, err, 404, "InvalidDiskId.NotFound")
	ecsDel := legacy.CreateDeleteSnapshotRequest()
	e.point(ecsDel)
	ecsDel.SnapshotId = snap.SnapshotId
	_, err = lc.DeleteSnapshot(ecsDel)
	wantLegacyError(t, err, 404, "InvalidSnapshotId.NotFound")
	ecsMod := legacy.CreateModifySnapshotAttributeRequest()
	e.point(ecsMod)
	ecsMod.SnapshotId, ecsMod.SnapshotName = snap.SnapshotId, "renamed"
	_, err = lc.ModifySnapshotAttribute(ecsMod)
	wantLegacyError(t, err, 404, "InvalidSnapshotId.NotFound")
	ecsDisk := legacy.CreateCreateDiskRequest()
	e.point(ecsDisk)
	ecsDisk.ZoneId, ecsDisk.SnapshotId = "cn-hangzhou-i", snap.SnapshotId
	_, err = lc.CreateDisk(ecsDisk)
	wantLegacyError(t, err, 404, "InvalidSnapshotId.NotFound")
	ecsReset := legacy.CreateResetDiskRequest()
	e.point(ecsReset)
	ecsReset.DiskId, ecsReset.SnapshotId = data, snap.SnapshotId
	_, err = lc.ResetDisk(ecsReset)
	wantLegacyError(t, err, 404, "InvalidDiskId.NotFound")
	ecsStop := legacy.CreateStopInstanceRequest()
	e.point(ecsStop)
	ecsStop.InstanceId = desk
	_, err = lc.StopInstance(ecsStop)
	wantLegacyError(t, err, 404, "InvalidInstanceId.NotFound")
	if s := e.waitEDSSnapshot(c, snap.SnapshotId); s.SnapshotName != "before-upgrade" {
		t.Errorf("the EDS snapshot's name is %q after ECS calls", s.SnapshotName)
	}
	del := ecd.CreateDeleteSnapshotRequest()
	e.point(del)
	del.SnapshotId = &[]string{snap.SnapshotId, "s-unknown"}
	if _, err := c.DeleteSnapshot(del); err != nil {
		t.Fatal(err)
	}
	dd := ecd.CreateDeleteDesktopsRequest()
	e.point(dd)
	dd.DesktopId = &[]string{desk}
	if _, err := c.DeleteDesktops(dd); err != nil {
		t.Fatal(err)
	}
	req := ecd.CreateDescribeDesktopsRequest()
	e.point(req)
	resp, err := c.DescribeDesktops(req)
	if err != nil || len(resp.Desktops) != 0 {
		t.Errorf("after DeleteDesktops: %v %d desktops", err, len(resp.Desktops))
	}
}

func (e *env) countECSSnapshots() int {
	c := e.legacyClient()
	req := legacy.CreateDescribeSnapshotsRequest()
	e.point(req)
	resp, err := c.DescribeSnapshots(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.TotalCount
}

// TestApsaraRoute: the Apsara Stack route with a raw signed client: body
// parameters, lowercase regionId, RequestID, the error sample's fields.
func TestApsaraRoute(t *testing.T) {
	e := start(t, "")
	_, _, data := e.runInstance()
	post := func(action string, params url.Values) (int, map[string]any) {
		params.Set("Format", "JSON")
		params.Set("Action", action) // an RPC signature covers it, not the path
		signature.SignRPC("POST", params, testKey, testSecret, "", time.Now().UTC())
		resp, err := http.Post("http://"+e.app.Addr+"/apsara/route/Ecs/"+action, "application/x-www-form-urlencoded", strings.NewReader(params.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %s", action, raw)
		}
		return resp.StatusCode, m
	}
	status, m := post("CreateSnapshot", url.Values{"regionId": {"cn-hangzhou"}, "version": {"2016-01-01"}, "DiskId": {data},
		"SnapshotName": {"apsara-1"}, "RetentionDays": {"3"}, "Tag.1.Key": {"k"}, "Tag.1.Value": {"v"}, "ClientToken": {"tok-a"}})
	if status != 200 || m["SnapshotId"] == nil || m["RequestID"] == nil {
		t.Fatalf("CreateSnapshot over the route: %d %v", status, m)
	}
	e.waitAccomplished(m["SnapshotId"].(string))
	status, m = post("DescribeSnapshots", url.Values{"regionId": {"cn-hangzhou"}, "DiskId": {data}})
	if status != 200 || m["TotalCount"].(float64) != 1 {
		t.Errorf("DescribeSnapshots over the route: %d %v", status, m)
	}
	for _, tc := range []struct {
		params url.Values
		status int
		code   string
	}{
		{url.Values{"DiskId": {data}}, 400, "MissingParameter"},
		{url.Values{"regionId": {"cn-hangzhou"}, "DiskId": {data}, "Description": {"http://x"}}, 404, "InvalidDescription.Malformed"},
		{url.Values{"regionId": {"cn-hangzhou"}, "DiskId": {data}, "Category": {"Other"}}, 403, "InvalidSnapshotCategory.Malformed"},
		{url.Values{"regionId": {"cn-hangzhou"}, "DiskId": {data}, "RetentionDays": {"65537"}}, 400, "InvalidRetentionDays.Malformed"},
		{url.Values{"regionId": {"cn-hangzhou"}, "DiskId": {data}, "Tag.21.Key": {"k"}}, 403, "QuotaExceed.Tags"},
		{url.Values{"regionId": {"cn-hangzhou"}, "DiskId": {data}, "SnapshotName": {"auto1"}}, 400, "InvalidSnapshotName.Malformed"},
		{url.Values{"regionId": {"cn-hangzhou"}, "DiskId": {data}, "ClientToken": {"tok-a"}, "SnapshotName": {"other"}}, 403, "IdempotentParameterMismatch"},
	} {
		status, m := post("CreateSnapshot", tc.params)
		if status != tc.status || m["Code"] != tc.code || m["resultCode"].(float64) != -1 || m["resultMsg"] == "" {
			t.Errorf("%v: %d %v, want %d %s", tc.params, status, m, tc.status, tc.code)
		}
	}
	if status, m := post("NoSuchAction", url.Values{"regionId": {"cn-hangzhou"}}); status != 404 || m["Code"] != "InvalidAction.NotFound" {
		t.Errorf("unknown action: %d %v", status, m)
	}
	// The path is not covered by an RPC signature: without the signed
	// Action, the route refuses.
	params := url.Values{"Format": {"JSON"}, "regionId": {"cn-hangzhou"}, "DiskId": {data}}
	signature.SignRPC("POST", params, testKey, testSecret, "", time.Now().UTC())
	resp, err := http.Post("http://"+e.app.Addr+"/apsara/route/Ecs/DescribeSnapshots", "application/x-www-form-urlencoded", strings.NewReader(params.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(raw), "IncompleteSignature") {
		t.Errorf("RPC-signed route call without Action: %d %s", resp.StatusCode, raw)
	}
}

// signACS3 signs a request with ACS3-HMAC-SHA256 as the tea SDKs do
// (spec/protocol.md 4.2), for routes no SDK reaches.
func signACS3(t *testing.T, req *http.Request, body []byte, action string) {
	t.Helper()
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	nonce := make([]byte, 16)
	rand.Read(nonce)
	h := map[string]string{"host": req.Host, "x-acs-action": action, "x-acs-version": "2014-05-26",
		"x-acs-date": time.Now().UTC().Format("2006-01-02T15:04:05Z"), "x-acs-signature-nonce": hex.EncodeToString(nonce),
		"x-acs-content-sha256": payload, "content-type": req.Header.Get("Content-Type")}
	names := make([]string, 0, len(h))
	for k, v := range h {
		names = append(names, k)
		if k != "host" {
			req.Header.Set(k, v)
		}
	}
	sort.Strings(names)
	var canon strings.Builder
	fmt.Fprintf(&canon, "%s\n%s\n%s\n", req.Method, req.URL.EscapedPath(), "")
	for _, k := range names {
		fmt.Fprintf(&canon, "%s:%s\n", k, h[k])
	}
	fmt.Fprintf(&canon, "\n%s\n%s", strings.Join(names, ";"), payload)
	ch := sha256.Sum256([]byte(canon.String()))
	sts := "ACS3-HMAC-SHA256\n" + hex.EncodeToString(ch[:])
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte(sts))
	req.Header.Set("Authorization", fmt.Sprintf("ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s",
		testKey, strings.Join(names, ";"), hex.EncodeToString(mac.Sum(nil))))
}

// TestApsaraRouteJSON: a JSON body signed with ACS3 reaches the action
// (nested tag lists flattened); with an RPC signature it is refused,
// since that signature does not cover the body.
func TestApsaraRouteJSON(t *testing.T) {
	e := start(t, "")
	_, _, data := e.runInstance()
	body := []byte(`{"regionId":"cn-hangzhou","version":"2016-01-01","DiskId":"` + data + `","SnapshotName":"json-1","RetentionDays":5,"Tag":[{"Key":"env","Value":"prod"}]}`)
	req, _ := http.NewRequest("POST", "http://"+e.app.Addr+"/apsara/route/Ecs/CreateSnapshot", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	signACS3(t, req, body, "CreateSnapshot")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var m map[string]any
	json.Unmarshal(raw, &m)
	if resp.StatusCode != 200 || m["SnapshotId"] == nil {
		t.Fatalf("JSON over the route: %d %s", resp.StatusCode, raw)
	}
	s := e.waitAccomplished(m["SnapshotId"].(string))
	if s.SnapshotName != "json-1" || s.RetentionDays != 5 || len(s.Tags.Tag) != 1 || s.Tags.Tag[0].TagValue != "prod" {
		t.Errorf("snapshot from JSON = %+v", s)
	}

	params := url.Values{"Format": {"JSON"}}
	signature.SignRPC("POST", params, testKey, testSecret, "", time.Now().UTC())
	req, _ = http.NewRequest("POST", "http://"+e.app.Addr+"/apsara/route/Ecs/CreateSnapshot?"+params.Encode(), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("JSON body under an RPC signature: status %d, want 400", resp.StatusCode)
	}
}

// TestApsaraRouteJSONList: a top-level JSON list of IDs in a JSON body
// reaches the action as the JSON-array parameter ECS reads
// (SnapshotIds=["s-…"]), so the filter applies instead of being dropped.
func TestApsaraRouteJSONList(t *testing.T) {
	e := start(t, "")
	_, sys, data := e.runInstance()
	post := func(action, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+e.app.Addr+"/apsara/route/Ecs/"+action, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		signACS3(t, req, []byte(body), action)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", action, body, resp.StatusCode, raw)
		}
		return m
	}
	var snaps []string
	for _, disk := range []string{data, sys} {
		m := post("CreateSnapshot", `{"regionId":"cn-hangzhou","DiskId":"`+disk+`"}`)
		snaps = append(snaps, m["SnapshotId"].(string))
		e.waitAccomplished(snaps[len(snaps)-1])
	}
	m := post("DescribeSnapshots", `{"regionId":"cn-hangzhou","SnapshotIds":["`+snaps[0]+`"]}`)
	list, _ := m["Snapshots"].(map[string]any)["Snapshot"].([]any)
	if m["TotalCount"].(float64) != 1 || len(list) != 1 || list[0].(map[string]any)["SnapshotId"] != snaps[0] {
		t.Errorf("DescribeSnapshots with SnapshotIds [%s] in a JSON body: %v", snaps[0], m)
	}
	m = post("DescribeDisks", `{"regionId":"cn-hangzhou","DiskIds":["`+data+`"]}`)
	disks, _ := m["Disks"].(map[string]any)["Disk"].([]any)
	if m["TotalCount"].(float64) != 1 || len(disks) != 1 || disks[0].(map[string]any)["DiskId"] != data {
		t.Errorf("DescribeDisks with DiskIds [%s] in a JSON body: %v", data, m)
	}
}

// TestEDSListings: DescribeDesktops pages by PageNumber/PageSize and
// filters on tags and OS types; DescribeSnapshots filters on the
// desktop's name, the creator and the OS type (official ecd SDK).
func TestEDSListings(t *testing.T) {
	e := start(t, "")
	c := e.ecdClient()
	create := func(name, team string) string {
		t.Helper()
		cr := ecd.CreateCreateDesktopsRequest()
		e.point(cr)
		cr.OfficeSiteId, cr.BundleId, cr.DesktopName = "cn-hangzhou+dir-1", "b-default", name
		cr.Tag = &[]ecd.CreateDesktopsTag{{Key: "team", Value: team}}
		cr.QueryParams["SystemDiskSize"], cr.QueryParams["DataDiskSize"] = "1", "1"
		created, err := c.CreateDesktops(cr)
		if err != nil || len(created.DesktopId) != 1 {
			t.Fatalf("CreateDesktops: %v", err)
		}
		return created.DesktopId[0]
	}
	alpha, beta, gamma := create("alpha", "red"), create("beta", "blue"), create("gamma", "red")
	e.waitDesktop(c, alpha, "Running")

	list := func(set func(r *ecd.DescribeDesktopsRequest)) []string {
		t.Helper()
		r := ecd.CreateDescribeDesktopsRequest()
		e.point(r)
		set(r)
		resp, err := c.DescribeDesktops(r)
		if err != nil {
			t.Fatalf("DescribeDesktops: %v", err)
		}
		var ids []string
		for _, d := range resp.Desktops {
			ids = append(ids, d.DesktopId)
		}
		return ids
	}
	// Newest first: gamma, beta, alpha.
	if got := list(func(r *ecd.DescribeDesktopsRequest) {
		r.QueryParams["PageNumber"], r.QueryParams["PageSize"] = "2", "1"
	}); len(got) != 1 || got[0] != beta {
		t.Errorf("page 2 of size 1 = %v, want [%s]", got, beta)
	}
	if got := list(func(r *ecd.DescribeDesktopsRequest) { r.MaxResults = "2" }); len(got) != 2 || got[0] != gamma {
		t.Errorf("MaxResults 2 = %v", got)
	}
	if got := list(func(r *ecd.DescribeDesktopsRequest) { r.Tag = &[]ecd.DescribeDesktopsTag{{Key: "team", Value: "red"}} }); len(got) != 2 || got[0] != gamma || got[1] != alpha {
		t.Errorf("team=red = %v, want [%s %s]", got, gamma, alpha)
	}
	if got := list(func(r *ecd.DescribeDesktopsRequest) { r.OsTypes = &[]string{"Linux"} }); len(got) != 0 {
		t.Errorf("OsTypes Linux = %v, want none (desktops run Windows)", got)
	}
	if got := list(func(r *ecd.DescribeDesktopsRequest) { r.OsTypes = &[]string{"Linux", "Windows"} }); len(got) != 3 {
		t.Errorf("OsTypes Linux,Windows = %v, want all", got)
	}

	// Attribute and status filters: delta differs from the others in
	// office site, charge type, policy group and image; beta is stopped.
	cr := ecd.CreateCreateDesktopsRequest()
	e.point(cr)
	cr.OfficeSiteId, cr.BundleId, cr.DesktopName = "cn-hangzhou+dir-2", "b-default", "delta"
	cr.ChargeType, cr.PolicyGroupId, cr.ImageId = "PrePaid", "pg-2", "m-2"
	cr.EndUserId, cr.SnapshotPolicyId = &[]string{"alice", "bob", "alice"}, "sp-1"
	cr.QueryParams["SystemDiskSize"], cr.QueryParams["DataDiskSize"] = "1", "1"
	created, err := c.CreateDesktops(cr)
	if err != nil {
		t.Fatalf("CreateDesktops delta: %v", err)
	}
	delta := created.DesktopId[0]
	for _, id := range []string{beta, gamma, delta} {
		e.waitDesktop(c, id, "Running")
	}
	stopBeta := ecd.CreateStopDesktopsRequest()
	e.point(stopBeta)
	stopBeta.DesktopId = &[]string{beta}
	if _, err := c.StopDesktops(stopBeta); err != nil {
		t.Fatalf("StopDesktops: %v", err)
	}
	e.waitDesktop(c, beta, "Stopped")
	for _, tc := range []struct {
		name string
		set  func(r *ecd.DescribeDesktopsRequest)
		want []string
	}{
		{"OfficeSiteId", func(r *ecd.DescribeDesktopsRequest) { r.OfficeSiteId = "cn-hangzhou+dir-2" }, []string{delta}},
		{"ChargeType PostPaid", func(r *ecd.DescribeDesktopsRequest) { r.ChargeType = "PostPaid" }, []string{gamma, beta, alpha}},
		{"ChargeType PrePaid", func(r *ecd.DescribeDesktopsRequest) { r.ChargeType = "PrePaid" }, []string{delta}},
		{"PolicyGroupId", func(r *ecd.DescribeDesktopsRequest) { r.PolicyGroupId = "pg-2" }, []string{delta}},
		{"ImageId.N", func(r *ecd.DescribeDesktopsRequest) { r.ImageId = &[]string{"m-1", "m-2"} }, []string{delta}},
		{"DesktopStatusList.N", func(r *ecd.DescribeDesktopsRequest) { r.DesktopStatusList = &[]string{"Stopped", "Starting"} }, []string{beta}},
		{"DesktopStatusList.N and DesktopStatus", func(r *ecd.DescribeDesktopsRequest) {
			r.DesktopStatusList, r.DesktopStatus = &[]string{"Stopped", "Running"}, "Running"
		}, []string{delta, gamma, alpha}},
		{"DesktopType", func(r *ecd.DescribeDesktopsRequest) { r.DesktopType = "eds.general.2c4g" }, []string{delta, gamma, beta, alpha}},
		{"DesktopType other", func(r *ecd.DescribeDesktopsRequest) { r.DesktopType = "eds.graphics.16c" }, nil},
		{"ProtocolType HDX", func(r *ecd.DescribeDesktopsRequest) { r.ProtocolType = "HDX" }, nil},
		{"ProtocolType ASP", func(r *ecd.DescribeDesktopsRequest) { r.ProtocolType = "ASP" }, []string{delta, gamma, beta, alpha}},
		{"ManagementFlag Updating", func(r *ecd.DescribeDesktopsRequest) { r.ManagementFlag = "Updating" }, nil},
		{"ResourceGroupId other", func(r *ecd.DescribeDesktopsRequest) { r.ResourceGroupId = "rg-other" }, nil},
		{"EndUserId.N", func(r *ecd.DescribeDesktopsRequest) { r.EndUserId = &[]string{"carol", "bob"} }, []string{delta}},
		{"EndUserId.N none assigned", func(r *ecd.DescribeDesktopsRequest) { r.EndUserId = &[]string{"carol", "ali"} }, nil},
		{"ExcludedEndUserId.N", func(r *ecd.DescribeDesktopsRequest) { r.ExcludedEndUserId = &[]string{"alice"} }, []string{gamma, beta, alpha}},
		{"DirectoryId", func(r *ecd.DescribeDesktopsRequest) { r.DirectoryId = "cn-hangzhou+dir-2" }, []string{delta}},
		{"DirectoryId and another OfficeSiteId", func(r *ecd.DescribeDesktopsRequest) {
			r.DirectoryId, r.OfficeSiteId = "cn-hangzhou+dir-2", "cn-hangzhou+dir-1"
		}, nil},
		{"SnapshotPolicyId", func(r *ecd.DescribeDesktopsRequest) { r.SnapshotPolicyId = "sp-1" }, []string{delta}},
		{"OfficeSiteName", func(r *ecd.DescribeDesktopsRequest) { r.OfficeSiteName = "hq" }, nil},
		{"DesktopGroupId", func(r *ecd.DescribeDesktopsRequest) { r.DesktopGroupId = "dg-1" }, nil},
		{"OnlyDesktopGroup", func(r *ecd.DescribeDesktopsRequest) { r.OnlyDesktopGroup = "true" }, nil},
		{"FilterDesktopGroup", func(r *ecd.DescribeDesktopsRequest) { r.FilterDesktopGroup = "true" }, []string{delta, gamma, beta, alpha}},
	} {
		if got := list(tc.set); !slices.Equal(got, tc.want) {
			t.Errorf("DescribeDesktops %s = %v, want %v", tc.name, got, tc.want)
		}
	}
	dr := ecd.CreateDescribeDesktopsRequest()
	e.point(dr)
	dr.DesktopId = &[]string{delta}
	if resp, err := c.DescribeDesktops(dr); err != nil || len(resp.Desktops) != 1 {
		t.Errorf("DescribeDesktops delta: %v", err)
	} else if d := resp.Desktops[0]; !slices.Equal(d.EndUserIds, []string{"alice", "bob"}) || d.DirectoryId != "cn-hangzhou+dir-2" ||
		d.SnapshotPolicyId != "sp-1" {
		t.Errorf("delta: EndUserIds %v, DirectoryId %q, SnapshotPolicyId %q", d.EndUserIds, d.DirectoryId, d.SnapshotPolicyId)
	}
	dr.EndUserId = &[]string{"a,b"}
	_, err = c.DescribeDesktops(dr)
	wantLegacyError(t, err, 400, "InvalidEndUserId.Malformed")
	start := ecd.CreateStartDesktopsRequest()
	e.point(start)
	start.DesktopId = &[]string{beta}
	if _, err := c.StartDesktops(start); err != nil {
		t.Fatalf("StartDesktops: %v", err)
	}
	e.waitDesktop(c, beta, "Running")

	sr := ecd.CreateCreateSnapshotRequest()
	e.point(sr)
	sr.DesktopId, sr.SnapshotName, sr.SourceDiskType = alpha, "alpha-sys", "system"
	snap, err := c.CreateSnapshot(sr)
	if err != nil {
		t.Fatal(err)
	}
	snaps := func(set func(r *ecd.DescribeSnapshotsRequest)) int {
		t.Helper()
		r := ecd.CreateDescribeSnapshotsRequest()
		e.point(r)
		set(r)
		resp, err := c.DescribeSnapshots(r)
		if err != nil {
			t.Fatalf("DescribeSnapshots: %v", err)
		}
		for _, s := range resp.Snapshots {
			if s.SnapshotId != snap.SnapshotId {
				t.Errorf("unexpected snapshot %s", s.SnapshotId)
			}
		}
		return len(resp.Snapshots)
	}
	for _, tc := range []struct {
		name string
		set  func(r *ecd.DescribeSnapshotsRequest)
		want int
	}{
		{"DesktopName alpha", func(r *ecd.DescribeSnapshotsRequest) { r.DesktopName = "alpha" }, 1},
		{"DesktopName beta", func(r *ecd.DescribeSnapshotsRequest) { r.DesktopName = "beta" }, 0},
		{"DesktopName none", func(r *ecd.DescribeSnapshotsRequest) { r.DesktopName = "delta" }, 0},
		{"Creator", func(r *ecd.DescribeSnapshotsRequest) { r.Creator = testKey }, 1},
		{"another Creator", func(r *ecd.DescribeSnapshotsRequest) { r.Creator = "LTAIsomeoneelse" }, 0},
		{"OsType Windows", func(r *ecd.DescribeSnapshotsRequest) { r.QueryParams["OsType"] = "Windows" }, 1},
		{"OsType Linux", func(r *ecd.DescribeSnapshotsRequest) { r.QueryParams["OsType"] = "Linux" }, 0},
	} {
		if got := snaps(tc.set); got != tc.want {
			t.Errorf("DescribeSnapshots %s: %d snapshots, want %d", tc.name, got, tc.want)
		}
	}

	// A desktop is acted on in its own region only.
	stop := ecd.CreateStopDesktopsRequest()
	e.point(stop)
	stop.RegionId, stop.DesktopId = "xx-nowhere", &[]string{alpha}
	_, err = c.StopDesktops(stop)
	wantLegacyError(t, err, 404, "InvalidRegionId.NotFound")
	if st, _, _ := e.desktopStatus(c, alpha); st != "Running" {
		t.Errorf("after StopDesktops in an unknown region the desktop is %s", st)
	}
}
