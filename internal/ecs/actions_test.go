package ecs

// Checks of the ECS actions against spec/actions.md (the rules the seeds
// leave to it), on the service with a recording engine.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/meta/sqlstore"
	"github.com/snapstack/snapstack/internal/param"
)

func reviewService(t *testing.T) (*Service, Caller) {
	t.Helper()
	store, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s, err := New(store, &recordingEngine{}, clock.Real{}, DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := s.EnsureRootAccount(context.Background(), "ak-review", "secret")
	if err != nil {
		t.Fatal(err)
	}
	return s, Caller{AccountID: acc, AccessKeyID: "ak-review"}
}

// putSnap stores an accomplished ECS snapshot of diskID.
func putSnap(t *testing.T, s *Service, c Caller, id, diskID, diskType string, mod func(*meta.Snapshot)) {
	t.Helper()
	now := time.Now()
	snap := &meta.Snapshot{ID: id, AccountID: c.AccountID, RegionID: "cn-hangzhou", Name: "snap", DiskID: diskID,
		DiskType: diskType, DiskCategory: "cloud_essd", DiskSizeGiB: 40, Status: SnapAccomplished, Category: "standard",
		Type: "user", Usage: "none", CreatedAt: now, ModifiedAt: now}
	if mod != nil {
		mod(snap)
	}
	if err := s.store.Update(context.Background(), func(tx meta.Tx) error { return tx.PutSnapshot(snap) }); err != nil {
		t.Fatal(err)
	}
}

func values(kv ...string) param.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return param.New(v)
}

func describeIDs(t *testing.T, s *Service, c Caller, kv ...string) ([]SnapshotItem, error) {
	t.Helper()
	out, err := s.DescribeSnapshots(context.Background(), c, values(append([]string{"RegionId", "cn-hangzhou"}, kv...)...))
	if err != nil {
		return nil, err
	}
	return out.(*DescribeSnapshotsResponse).Snapshots.Snapshot, nil
}

// actions.md 1.4 / §5: ModifySnapshotAttribute Description is "empty or
// ≤256, no http(s)" (CreateSnapshot's 2-character minimum does not apply).
func TestModifySnapshotAttributeDescription(t *testing.T) {
	s, c := reviewService(t)
	putSnap(t, s, c, "s-a", "d-a", "data", nil)
	for _, d := range []string{"x", strings.Repeat("é", 256)} {
		if _, err := s.ModifySnapshotAttribute(context.Background(), c, values("SnapshotId", "s-a", "Description", d)); err != nil {
			t.Errorf("Description of %d characters: %v, want success", len([]rune(d)), err)
		}
	}
	for _, d := range []string{strings.Repeat("x", 257), "https://example.com"} {
		if _, err := s.ModifySnapshotAttribute(context.Background(), c, values("SnapshotId", "s-a", "Description", d)); !errors.Is(err, apierr.InvalidDescription) {
			t.Errorf("Description %.20q: %v, want InvalidDescription.Malformed", d, err)
		}
	}
}

// actions.md 1.9: CreateDisk lists 403 InvalidSnapshot.TooLarge: the disk
// grows to the snapshot's size, which must fit the category's range
// (cloud: 5-2000 GiB).
func TestCreateDiskSnapshotTooLargeForCategory(t *testing.T) {
	s, c := reviewService(t)
	putSnap(t, s, c, "s-big", "d-big", "data", func(sn *meta.Snapshot) { sn.DiskSizeGiB = 3000 })
	_, err := s.CreateDisk(context.Background(), c, values("RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h",
		"DiskCategory", "cloud", "SnapshotId", "s-big"))
	if !errors.Is(err, apierr.SnapshotTooLarge) {
		t.Errorf("CreateDisk cloud (max 2000 GiB) from a 3000 GiB snapshot: %v, want InvalidSnapshot.TooLarge", err)
	}
	if _, err := s.CreateDisk(context.Background(), c, values("RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h",
		"DiskCategory", "cloud_essd", "SnapshotId", "s-big")); err != nil {
		t.Errorf("CreateDisk cloud_essd (max 32768 GiB) from a 3000 GiB snapshot: %v", err)
	}
}

// actions.md 0.2: with NextToken or MaxResults, PageNumber and PageSize
// are ignored (not validated either).
func TestPagingTokenModeIgnoresPageParameters(t *testing.T) {
	s, c := reviewService(t)
	for i := range 3 {
		putSnap(t, s, c, fmt.Sprintf("s-%d", i), "d-a", "data", nil)
	}
	got, err := describeIDs(t, s, c, "MaxResults", "2", "PageSize", "500", "PageNumber", "0")
	if err != nil || len(got) != 2 {
		t.Fatalf("MaxResults=2 with bad page parameters: %d snapshots, %v", len(got), err)
	}
	if _, err := describeIDs(t, s, c, "PageSize", "500"); !errors.Is(err, apierr.InvalidPageSize) {
		t.Fatalf("PageSize=500 alone: %v, want InvalidPageSize", err)
	}
	// A PageNumber whose offset would overflow is an empty page, not page 1.
	if got, err := describeIDs(t, s, c, "PageNumber", "4611686018427387904", "PageSize", "10"); err != nil || len(got) != 0 {
		t.Fatalf("PageNumber 2^62: %d snapshots, %v", len(got), err)
	}
}

// actions.md 1.9: ClientToken is a CreateDisk parameter (idempotency): a
// retried CreateDisk returns the first disk, and the token with other
// parameters is IdempotentParameterMismatch.
func TestCreateDiskClientToken(t *testing.T) {
	s, c := reviewService(t)
	putSnap(t, s, c, "s-a", "d-a", "data", nil)
	p := values("RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h", "DiskCategory", "cloud_essd",
		"SnapshotId", "s-a", "ClientToken", "tok-1")
	r1, err := s.CreateDisk(context.Background(), c, p)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.CreateDisk(context.Background(), c, p)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := r1.(*CreateDiskResponse).DiskId, r2.(*CreateDiskResponse).DiskId; a != b {
		t.Errorf("same ClientToken gave two disks %s and %s", a, b)
	}
	other := values("RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h", "DiskCategory", "cloud_essd",
		"Size", "100", "ClientToken", "tok-1")
	if _, err := s.CreateDisk(context.Background(), c, other); !errors.Is(err, apierr.IdempotentParameterMismatch) {
		t.Errorf("same ClientToken, other parameters: %v, want IdempotentParameterMismatch", err)
	}
}

// actions.md 1.2: DescribeSnapshots filters by SnapshotLinkId (AND with the
// others); an unknown one is 404 InvalidSnapshotLinkId.NotFound.
func TestDescribeSnapshotsSnapshotLinkIdFilter(t *testing.T) {
	s, c := reviewService(t)
	putSnap(t, s, c, "s-a", "d-a", "data", nil)
	putSnap(t, s, c, "s-b", "d-b", "data", nil)
	all, err := describeIDs(t, s, c, "SnapshotIds", `["s-a"]`)
	if err != nil || len(all) != 1 {
		t.Fatalf("setup: %v %v", all, err)
	}
	link := all[0].SnapshotLinkId
	got, err := describeIDs(t, s, c, "SnapshotLinkId", link)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SnapshotId != "s-a" {
		t.Errorf("SnapshotLinkId=%s returned %d snapshots, want only s-a", link, len(got))
	}
	got, err = describeIDs(t, s, c, "SnapshotLinkId", link, "DiskId", "d-b")
	if err != nil || len(got) != 0 {
		t.Errorf("SnapshotLinkId of d-a and DiskId d-b: %d snapshots, %v; want none", len(got), err)
	}
	if _, err = describeIDs(t, s, c, "SnapshotLinkId", "sl-doesnotexist"); !errors.Is(err, apierr.SnapshotLinkNotFound) {
		t.Errorf("unknown SnapshotLinkId: %v, want InvalidSnapshotLinkId.NotFound", err)
	}
}

// actions.md 1.2: KMSKeyId is a DescribeSnapshots filter.
func TestDescribeSnapshotsKMSKeyIdFilter(t *testing.T) {
	s, c := reviewService(t)
	putSnap(t, s, c, "s-a", "d-a", "data", func(sn *meta.Snapshot) { sn.Encrypted, sn.KMSKeyID = true, "key-1" })
	putSnap(t, s, c, "s-b", "d-b", "data", nil)
	got, err := describeIDs(t, s, c, "KMSKeyId", "key-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Errorf("KMSKeyId=key-1 returned %d snapshots, want 1", len(got))
	}
}

// actions.md 1.9: Encrypted and KMSKeyId. A disk made from an encrypted
// snapshot is encrypted with the snapshot's key (another key is
// InvalidKmsKeyId.NotMatchSnapshot); Encrypted=true encrypts a new disk.
func TestCreateDiskEncryption(t *testing.T) {
	s, c := reviewService(t)
	putSnap(t, s, c, "s-enc", "d-a", "data", func(sn *meta.Snapshot) { sn.Encrypted, sn.KMSKeyID = true, "key-1" })
	disk := func(kv ...string) (*meta.Disk, error) {
		out, err := s.CreateDisk(context.Background(), c, values(append([]string{"RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h",
			"DiskCategory", "cloud_essd"}, kv...)...))
		if err != nil {
			return nil, err
		}
		var d *meta.Disk
		err = s.store.View(context.Background(), func(tx meta.Tx) (err error) {
			d, err = tx.GetDisk(c.AccountID, out.(*CreateDiskResponse).DiskId)
			return err
		})
		return d, err
	}
	if d, err := disk("SnapshotId", "s-enc"); err != nil || !d.Encrypted || d.KMSKeyID != "key-1" {
		t.Errorf("disk from an encrypted snapshot: %+v, %v", d, err)
	}
	if _, err := disk("SnapshotId", "s-enc", "KMSKeyId", "key-2"); !errors.Is(err, apierr.KMSKeyNotMatchSnapshot) {
		t.Errorf("another key: %v, want InvalidKmsKeyId.NotMatchSnapshot", err)
	}
	if d, err := disk("Size", "20", "Encrypted", "true", "KMSKeyId", "key-3"); err != nil || !d.Encrypted || d.KMSKeyID != "key-3" {
		t.Errorf("Encrypted=true: %+v, %v", d, err)
	}
	if d, err := disk("Size", "20"); err != nil || d.Encrypted {
		t.Errorf("plain disk: %+v, %v", d, err)
	}
}

// actions.md 1.9 and 1.14: CreateDisk and RunInstances list
// InvalidDescription.Malformed under 400 (the snapshot actions, per the
// seeds, under 404); a RunInstances disk's description is
// InvalidDiskDescription.Malformed; MultiAttach on a disk other than an
// ESSD is 403 InvalidParameter.MultiAttach.
func TestDiskAndInstanceDescriptionErrors(t *testing.T) {
	s, c := reviewService(t)
	ctx := context.Background()
	const bad = "http://description"
	createDisk := func(kv ...string) error {
		_, err := s.CreateDisk(ctx, c, values(append([]string{"RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h", "Size", "40"}, kv...)...))
		return err
	}
	run := func(kv ...string) error {
		_, err := s.RunInstances(ctx, c, values(append([]string{"RegionId", "cn-hangzhou", "ImageId", "aliyun_3_x64", "InstanceType", "ecs.g7.large"}, kv...)...))
		return err
	}
	for _, tc := range []struct {
		name   string
		err    error
		code   string
		status int
	}{
		{"CreateDisk Description", createDisk("DiskCategory", "cloud_essd", "Description", bad), "InvalidDescription.Malformed", 400},
		{"CreateDisk MultiAttach", createDisk("DiskCategory", "cloud_efficiency", "MultiAttach", "Enabled"), "InvalidParameter.MultiAttach", 403},
		{"RunInstances Description", run("Description", bad), "InvalidDescription.Malformed", 400},
		{"RunInstances SystemDisk.Description", run("SystemDisk.Description", bad), "InvalidDiskDescription.Malformed", 400},
		{"RunInstances DataDisk.1.Description", run("DataDisk.1.Size", "40", "DataDisk.1.Description", bad), "InvalidDiskDescription.Malformed", 400},
		{"RunInstances SystemDisk.DiskName", run("SystemDisk.DiskName", "1bad"), "InvalidDiskName.Malformed", 400},
		{"ModifySnapshotAttribute Description stays 404", func() error {
			putSnap(t, s, c, "s-desc", "d-desc", "data", nil)
			_, err := s.ModifySnapshotAttribute(ctx, c, values("SnapshotId", "s-desc", "Description", bad))
			return err
		}(), "InvalidDescription.Malformed", 404},
	} {
		e := apierr.As(tc.err)
		if e == nil || e.Code != tc.code || e.HTTPStatus != tc.status {
			t.Errorf("%s: %v (status %v), want %d %s", tc.name, tc.err, statusOf(e), tc.status, tc.code)
		}
	}
}

func statusOf(e *apierr.Error) int {
	if e == nil {
		return 0
	}
	return e.HTTPStatus
}

// actions.md 1.10: DescribeDisks narrows its result by the disks' flags,
// encryption key, lock, charge type and creation time, and refuses values
// it does not know with the spec's codes.
func TestDescribeDisksFilters(t *testing.T) {
	s, c := reviewService(t)
	ctx := context.Background()
	mk := func(kv ...string) string {
		t.Helper()
		r, err := s.CreateDisk(ctx, c, values(append([]string{"RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h", "DiskCategory", "cloud_essd", "Size", "40"}, kv...)...))
		if err != nil {
			t.Fatal(err)
		}
		return r.(*CreateDiskResponse).DiskId
	}
	plain := mk()
	enc := mk("Encrypted", "true", "KMSKeyId", "key-1")
	multi := mk("MultiAttach", "Enabled")
	arrears := mk()
	if err := s.store.Update(ctx, func(tx meta.Tx) error {
		d, err := tx.GetDisk(c.AccountID, arrears)
		if err != nil {
			return err
		}
		d.InArrears = true
		return tx.PutDisk(d)
	}); err != nil {
		t.Fatal(err)
	}
	describe := func(kv ...string) ([]string, error) {
		r, err := s.DescribeDisks(ctx, c, values(append([]string{"RegionId", "cn-hangzhou", "PageSize", "50"}, kv...)...))
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, d := range r.(*DescribeDisksResponse).Disks.Disk {
			ids = append(ids, d.DiskId)
		}
		sort.Strings(ids)
		return ids, nil
	}
	sorted := func(ids ...string) string { sort.Strings(ids); return strings.Join(ids, " ") }
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{[]string{"Encrypted", "true"}, sorted(enc)},
		{[]string{"Encrypted", "false"}, sorted(plain, multi, arrears)},
		{[]string{"KMSKeyId", "key-1"}, sorted(enc)},
		{[]string{"MultiAttach", "Enabled"}, sorted(multi)},
		{[]string{"MultiAttach", "Disabled", "Encrypted", "false"}, sorted(plain, arrears)},
		{[]string{"LockReason", "financial"}, sorted(arrears)},
		{[]string{"LockReason", "security"}, ""},
		{[]string{"DiskChargeType", "PrePaid"}, ""},
		{[]string{"DiskChargeType", "PostPaid", "Portable", "true"}, sorted(plain, enc, multi, arrears)},
		{[]string{"DeleteWithInstance", "true"}, ""},
		{[]string{"Filter.1.Key", "CreationStartTime", "Filter.1.Value", "2000-01-01T00:00Z"}, sorted(plain, enc, multi, arrears)},
		{[]string{"Filter.1.Key", "CreationEndTime", "Filter.1.Value", "2000-01-01T00:00Z"}, ""},
	} {
		got, err := describe(tc.kv...)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("DescribeDisks %v: %v %v, want %q", tc.kv, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		kv     []string
		code   string
		status int
	}{
		{[]string{"LockReason", "unpaid"}, "InvalidLockReason.NotFound", 404},
		{[]string{"DiskChargeType", "Monthly"}, "InvalidDiskChargeType.NotFound", 404},
		{[]string{"Filter.1.Key", "Color", "Filter.1.Value", "red"}, "InvalidFilterKey.NotFound", 404},
		{[]string{"Filter.1.Key", "CreationStartTime", "Filter.1.Value", "yesterday"}, "InvalidFilterValue", 404},
		{[]string{"Encrypted", "maybe"}, "InvalidParameter", 400},
		{[]string{"MultiAttach", "Sometimes"}, "InvalidParameter", 400},
	} {
		_, err := describe(tc.kv...)
		if e := apierr.As(err); e == nil || e.Code != tc.code || e.HTTPStatus != tc.status {
			t.Errorf("DescribeDisks %v: %v, want %d %s", tc.kv, err, tc.status, tc.code)
		}
	}
}

func TestDescribeInstancesFilters(t *testing.T) {
	s, c := reviewService(t)
	ctx := context.Background()
	run := func(kv ...string) string {
		t.Helper()
		r, err := s.RunInstances(ctx, c, values(append([]string{"RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h"}, kv...)...))
		if err != nil {
			t.Fatal(err)
		}
		return r.(*RunInstancesResponse).InstanceIdSets.InstanceIdSet[0]
	}
	web1 := run("InstanceName", "web-1", "ImageId", "aliyun_3_x64", "InstanceType", "ecs.g7.large")
	web2 := run("InstanceName", "web-2", "ImageId", "ubuntu_22_04_x64", "InstanceType", "ecs.g7.large")
	db := run("InstanceName", "db-1", "ImageId", "aliyun_3_x64", "InstanceType", "ecs.r7.xlarge")
	if err := s.store.Update(ctx, func(tx meta.Tx) error {
		inst, err := tx.GetInstance(c.AccountID, db)
		if err != nil {
			return err
		}
		inst.SecurityLocked = true
		return tx.PutInstance(inst)
	}); err != nil {
		t.Fatal(err)
	}
	describe := func(kv ...string) ([]string, error) {
		r, err := s.DescribeInstances(ctx, c, values(append([]string{"RegionId", "cn-hangzhou", "PageSize", "50"}, kv...)...))
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, in := range r.(*DescribeInstancesResponse).Instances.Instance {
			ids = append(ids, in.InstanceId)
		}
		sort.Strings(ids)
		return ids, nil
	}
	sorted := func(ids ...string) string { sort.Strings(ids); return strings.Join(ids, " ") }
	all := sorted(web1, web2, db)
	for _, tc := range []struct {
		kv   []string
		want string
	}{
		{nil, all},
		{[]string{"InstanceName", "web-*"}, sorted(web1, web2)},
		{[]string{"InstanceName", "db-1"}, sorted(db)},
		{[]string{"InstanceName", "db"}, ""},
		{[]string{"InstanceName", "*-1"}, sorted(web1, db)},
		{[]string{"ImageId", "aliyun_3_x64"}, sorted(web1, db)},
		{[]string{"InstanceType", "ecs.g7.large", "ImageId", "ubuntu_22_04_x64"}, sorted(web2)},
		{[]string{"LockReason", "security"}, sorted(db)},
		{[]string{"LockReason", "financial"}, ""},
		{[]string{"InstanceChargeType", "PostPaid"}, all},
		{[]string{"InstanceChargeType", "PrePaid"}, ""},
		{[]string{"InstanceNetworkType", "vpc"}, all},
		{[]string{"InstanceNetworkType", "classic"}, ""},
		{[]string{"Filter.1.Key", "CreationStartTime", "Filter.1.Value", "2000-01-01T00:00Z"}, all},
		{[]string{"Filter.1.Key", "CreationEndTime", "Filter.1.Value", "2000-01-01T00:00Z"}, ""},
		{[]string{"Filter.1.Key", "ExpiredStartTime", "Filter.1.Value", "2099-12-31T15:59Z", "Filter.2.Key", "ExpiredEndTime", "Filter.2.Value", "2099-12-31T15:59Z"}, all},
		{[]string{"Filter.1.Key", "ExpiredEndTime", "Filter.1.Value", "2030-01-01T00:00Z"}, ""},
		{[]string{"Filter.3.Key", "ExpiredStartTime", "Filter.3.Value", "2100-01-01T00:00Z"}, ""},
	} {
		got, err := describe(tc.kv...)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("DescribeInstances %v: %v %v, want %q", tc.kv, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		kv     []string
		code   string
		status int
	}{
		{[]string{"LockReason", "unpaid"}, "InvalidLockReason.NotFound", 404},
		{[]string{"InstanceChargeType", "Monthly"}, "InvalidInstanceChargeType.NotFound", 404},
		{[]string{"InstanceNetworkType", "overlay"}, "InvalidNetworkType.NotFound", 404},
		{[]string{"Filter.1.Key", "Color", "Filter.1.Value", "red"}, "InvalidFilterKey.NotFound", 404},
		{[]string{"Filter.1.Key", "ExpiredStartTime", "Filter.1.Value", "soon"}, "InvalidFilterValue", 404},
		{[]string{"Status", "Sleeping"}, "InvalidStatus.NotFound", 404},
	} {
		_, err := describe(tc.kv...)
		if e := apierr.As(err); e == nil || e.Code != tc.code || e.HTTPStatus != tc.status {
			t.Errorf("DescribeInstances %v: %v, want %d %s", tc.kv, err, tc.status, tc.code)
		}
	}
}

// TestBoolParametersAreChecked: a true/false parameter with another value
// is 400 InvalidParameter naming it and its values, and nothing is made.
func TestBoolParametersAreChecked(t *testing.T) {
	s, c := reviewService(t)
	ctx := context.Background()
	_, err := s.RunInstances(ctx, c, values("RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h", "ImageId", "aliyun_3_x64",
		"InstanceType", "ecs.g7.large", "DryRun", "maybe"))
	if e := apierr.As(err); e == nil || e.Code != "InvalidParameter" || e.HTTPStatus != 400 || !strings.Contains(e.Message, `"DryRun"`) {
		t.Errorf("RunInstances DryRun=maybe: %v", err)
	}
	r, err := s.DescribeInstances(ctx, c, values("RegionId", "cn-hangzhou"))
	if err != nil || r.(*DescribeInstancesResponse).TotalCount != 0 {
		t.Errorf("RunInstances with a bad DryRun made instances: %v %+v", err, r)
	}
	_, err = s.DescribeSnapshots(ctx, c, values("RegionId", "cn-hangzhou", "Encrypted", "maybe"))
	if e := apierr.As(err); e == nil || e.Code != "InvalidParameter" || e.HTTPStatus != 400 || !strings.Contains(e.Message, "Valid values: true, false.") {
		t.Errorf("DescribeSnapshots Encrypted=maybe: %v", err)
	}
}

// TestLooseValuesAreRefused: values that used to be read loosely (a JSON
// null ID list, a size with a unit, a yes/no flag) or not at all (DryRun
// of the listings) get their error.
func TestLooseValuesAreRefused(t *testing.T) {
	s, c := reviewService(t)
	ctx := context.Background()
	if _, err := s.CreateDisk(ctx, c, values("RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h", "DiskCategory", "cloud_essd", "Size", "40")); err != nil {
		t.Fatal(err)
	}
	run := func(kv ...string) error {
		_, err := s.RunInstances(ctx, c, values(append([]string{"RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h", "ImageId", "aliyun_3_x64",
			"InstanceType", "ecs.g7.large", "DataDisk.1.Category", "cloud_essd"}, kv...)...))
		return err
	}
	for _, tc := range []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"DescribeDisks DiskIds=null", func() error {
			_, err := s.DescribeDisks(ctx, c, values("RegionId", "cn-hangzhou", "DiskIds", "null"))
			return err
		}, "InvalidParameter.DiskIds", 400},
		{"DescribeSnapshots SnapshotIds=null", func() error {
			_, err := s.DescribeSnapshots(ctx, c, values("RegionId", "cn-hangzhou", "SnapshotIds", "null"))
			return err
		}, "InvalidSnapshotIds.Malformed", 403},
		{"DescribeInstances InstanceIds=null", func() error {
			_, err := s.DescribeInstances(ctx, c, values("RegionId", "cn-hangzhou", "InstanceIds", "null"))
			return err
		}, "InvalidParameter", 400},
		{"DataDisk size with a unit", func() error { return run("DataDisk.1.Size", "40GiB") }, "InvalidDataDiskSize.ValueNotSupported", 400},
		{"DataDisk fractional size", func() error { return run("DataDisk.1.Size", "40.5") }, "InvalidDataDiskSize.ValueNotSupported", 400},
		{"DataDisk DeleteWithInstance=yes", func() error { return run("DataDisk.1.Size", "40", "DataDisk.1.DeleteWithInstance", "yes") }, "InvalidParameter", 400},
		{"DescribeDisks DryRun", func() error {
			_, err := s.DescribeDisks(ctx, c, values("RegionId", "cn-hangzhou", "DryRun", "true"))
			return err
		}, "DryRunOperation", 400},
		{"DescribeInstances DryRun", func() error {
			_, err := s.DescribeInstances(ctx, c, values("RegionId", "cn-hangzhou", "DryRun", "true"))
			return err
		}, "DryRunOperation", 400},
		{"DescribeDisks DryRun=maybe", func() error {
			_, err := s.DescribeDisks(ctx, c, values("RegionId", "cn-hangzhou", "DryRun", "maybe"))
			return err
		}, "InvalidParameter", 400},
	} {
		err := tc.call()
		if e := apierr.As(err); e == nil || e.Code != tc.code || e.HTTPStatus != tc.status {
			t.Errorf("%s: %v, want %d %s", tc.name, err, tc.status, tc.code)
		}
	}
	r, err := s.DescribeInstances(ctx, c, values("RegionId", "cn-hangzhou"))
	if err != nil || r.(*DescribeInstancesResponse).TotalCount != 0 {
		t.Errorf("a refused RunInstances made instances: %v", err)
	}
}
