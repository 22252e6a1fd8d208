// Package metatest is the conformance suite of meta.Store: every metadata
// backend runs Run with a constructor of fresh, empty stores.
package metatest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/meta"
)

// Run runs the suite; newStore returns an empty store, closed by the suite.
func Run(t *testing.T, newStore func(t *testing.T) meta.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, meta.Store)
	}{
		{"AccountsAndKeys", testAccounts},
		{"NotFound", testNotFound},
		{"RollbackOnError", testRollback},
		{"InstanceTransitionsAndFilters", testInstances},
		{"InstanceAttributeFilters", testInstanceAttributes},
		{"DiskFilters", testDisks},
		{"DiskFlagFilters", testDiskFlags},
		{"SnapshotFiltersAndPaging", testSnapshots},
		{"SnapshotExpiry", testExpiry},
		{"Tokens", testTokens},
		{"Nonces", testNonces},
		{"SerialisedUpdates", testSerialised},
		{"Products", testProducts},
		{"DSW", testDSW},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			defer s.Close()
			tc.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

func update(t *testing.T, s meta.Store, fn func(meta.Tx) error) {
	t.Helper()
	if err := s.Update(context.Background(), fn); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func view(t *testing.T, s meta.Store, fn func(meta.Tx) error) {
	t.Helper()
	if err := s.View(context.Background(), fn); err != nil {
		t.Fatalf("view: %v", err)
	}
}

func testAccounts(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error {
		if err := tx.PutAccount(&meta.Account{ID: "acc1", Name: "root", CreatedAt: t0}); err != nil {
			return err
		}
		if err := tx.PutAccessKey(&meta.AccessKey{ID: "AK1", Secret: "sec", AccountID: "acc1", CreatedAt: t0}); err != nil {
			return err
		}
		return tx.PutResourceGroup(&meta.ResourceGroup{ID: "rg-1", AccountID: "acc1", Name: "default", Default: true, CreatedAt: t0})
	})
	view(t, s, func(tx meta.Tx) error {
		k, err := tx.GetAccessKey("AK1")
		if err != nil {
			return err
		}
		if k.Secret != "sec" || k.AccountID != "acc1" || !k.CreatedAt.Equal(t0) {
			t.Errorf("access key = %+v", k)
		}
		g, err := tx.DefaultResourceGroup("acc1")
		if err != nil {
			return err
		}
		if g.ID != "rg-1" {
			t.Errorf("default group = %s", g.ID)
		}
		accs, err := tx.ListAccounts()
		if err != nil {
			return err
		}
		if len(accs) != 1 || accs[0].Name != "root" {
			t.Errorf("accounts = %+v", accs)
		}
		return nil
	})
	update(t, s, func(tx meta.Tx) error {
		if err := tx.PutAccessKey(&meta.AccessKey{ID: "AK0", Secret: "s0", AccountID: "acc1", CreatedAt: t0}); err != nil {
			return err
		}
		if err := tx.PutAccessKey(&meta.AccessKey{ID: "AK9", Secret: "s9", AccountID: "acc2", CreatedAt: t0}); err != nil {
			return err
		}
		keys, err := tx.ListAccessKeys("acc1")
		if err != nil || len(keys) != 2 || keys[0].ID != "AK0" || keys[1].ID != "AK1" {
			t.Errorf("keys of acc1: %+v %v", keys, err)
		}
		if err := tx.DeleteAccessKey("AK0"); err != nil {
			return err
		}
		if err := tx.DeleteAccessKey("AK0"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("deleting a deleted key: %v", err)
		}
		if _, err := tx.GetAccessKey("AK0"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("deleted key still found: %v", err)
		}
		return tx.DeleteAccessKey("AK9")
	})
}

func testNotFound(t *testing.T, s meta.Store) {
	view(t, s, func(tx meta.Tx) error {
		if _, err := tx.GetDisk("acc1", "d-none"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("GetDisk missing: %v", err)
		}
		if _, err := tx.GetAccessKey("nope"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("GetAccessKey missing: %v", err)
		}
		return nil
	})
	update(t, s, func(tx meta.Tx) error {
		if err := tx.PutDisk(&meta.Disk{ID: "d-1", AccountID: "acc1", RegionID: "r", CreatedAt: t0}); err != nil {
			return err
		}
		// Another account does not see it.
		if _, err := tx.GetDisk("acc2", "d-1"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("GetDisk other account: %v", err)
		}
		if d, err := tx.FindDisk("d-1"); err != nil || d.AccountID != "acc1" {
			t.Errorf("FindDisk: %v %v", d, err)
		}
		if _, err := tx.FindDisk("d-2"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("FindDisk missing: %v", err)
		}
		if err := tx.DeleteDisk("acc2", "d-1"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("DeleteDisk other account: %v", err)
		}
		return nil
	})
}

func testRollback(t *testing.T, s meta.Store) {
	boom := errors.New("boom")
	err := s.Update(context.Background(), func(tx meta.Tx) error {
		if err := tx.PutAccount(&meta.Account{ID: "gone"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want the fn error", err)
	}
	view(t, s, func(tx meta.Tx) error {
		if _, err := tx.GetAccount("gone"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("rolled back account is visible: %v", err)
		}
		return nil
	})
}

func testInstances(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error {
		for i, st := range []string{"Running", "Stopped", "Starting"} {
			in := &meta.Instance{ID: fmt.Sprintf("i-%d", i), AccountID: "acc1", RegionID: "cn-hangzhou", ZoneID: "z", Status: st,
				CreatedAt: t0.Add(time.Duration(i) * time.Minute), Tags: []meta.Tag{{Key: "env", Value: st}}}
			if st == "Starting" {
				in.TargetStatus, in.SettleAt = "Running", t0.Add(time.Hour)
			}
			if err := tx.PutInstance(in); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx meta.Tx) error {
		_, n, err := tx.ListInstances(meta.InstanceFilter{AccountID: "acc1", Status: "Running", Now: t0})
		if err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("Running before settle: %d, want 1", n)
		}
		_, n, _ = tx.ListInstances(meta.InstanceFilter{AccountID: "acc1", Status: "Running", Now: t0.Add(2 * time.Hour)})
		if n != 2 {
			t.Errorf("Running after settle: %d, want 2", n)
		}
		got, n, _ := tx.ListInstances(meta.InstanceFilter{AccountID: "acc1", Tags: []meta.TagFilter{{Key: "env", Value: "Stopped", HasValue: true}}})
		if n != 1 || got[0].ID != "i-1" {
			t.Errorf("tag filter: %d", n)
		}
		got, _, _ = tx.ListInstances(meta.InstanceFilter{AccountID: "acc1"})
		if len(got) != 3 || got[0].ID != "i-2" {
			t.Errorf("order: newest first expected, got %d items", len(got))
		}
		return nil
	})
}

func testInstanceAttributes(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error {
		for i, name := range []string{"web-1", "web-2", "Web-3", "db[1]?", "web"} {
			in := &meta.Instance{ID: fmt.Sprintf("i-%d", i), AccountID: "acc1", RegionID: "r", ZoneID: "z", Name: name, Status: "Running",
				ImageID: fmt.Sprintf("img-%d", i%2), InstanceType: "ecs.g7.large", SecurityLocked: i == 1, CreatedAt: t0.Add(time.Duration(i) * time.Hour)}
			if i == 3 {
				in.InstanceType = "ecs.c7.xlarge"
			}
			if i%2 == 0 {
				in.Attrs = map[string]string{"Site": fmt.Sprintf("site-%d", i/2%2), "Plan": "paid"}
			}
			users := [][]string{{"ann", "bob"}, {"bob"}, {}, {"annie"}, nil}[i]
			if users != nil {
				if in.Attrs == nil {
					in.Attrs = map[string]string{}
				}
				in.Attrs["Users"] = meta.JoinList(users)
			}
			if i == 4 { // Stopping until t0+1h, then Stopped
				in.Status, in.TargetStatus, in.SettleAt = "Stopping", "Stopped", t0.Add(time.Hour)
			}
			if err := tx.PutInstance(in); err != nil {
				return err
			}
		}
		return nil
	})
	yes, no := true, false
	view(t, s, func(tx meta.Tx) error {
		for _, tc := range []struct {
			name string
			f    meta.InstanceFilter
			want string // IDs' digits, newest first
		}{
			{"glob prefix", meta.InstanceFilter{NameGlob: "web-*"}, "10"},
			{"glob is case-sensitive", meta.InstanceFilter{NameGlob: "Web*"}, "2"},
			{"glob inside", meta.InstanceFilter{NameGlob: "*eb*"}, "4210"},
			{"glob without star is exact", meta.InstanceFilter{NameGlob: "web"}, "4"},
			{"? and [ match themselves", meta.InstanceFilter{NameGlob: "db[1]?"}, "3"},
			{"? is no wildcard", meta.InstanceFilter{NameGlob: "web-?"}, ""},
			{"image", meta.InstanceFilter{ImageID: "img-1"}, "31"},
			{"type", meta.InstanceFilter{InstanceType: "ecs.c7.xlarge"}, "3"},
			{"locked", meta.InstanceFilter{SecurityLocked: &yes}, "1"},
			{"not locked", meta.InstanceFilter{SecurityLocked: &no}, "4320"},
			{"created from", meta.InstanceFilter{CreatedAfter: t0.Add(3 * time.Hour)}, "43"},
			{"created until", meta.InstanceFilter{CreatedBefore: t0.Add(time.Hour)}, "10"},
			{"combined", meta.InstanceFilter{NameGlob: "web*", ImageID: "img-0", CreatedAfter: t0.Add(time.Minute)}, "4"},
			{"images", meta.InstanceFilter{ImageIDs: []string{"img-1", "img-9"}}, "31"},
			{"no images", meta.InstanceFilter{ImageIDs: []string{}}, ""},
			{"attribute", meta.InstanceFilter{Attrs: map[string]string{"Site": "site-0"}}, "40"},
			{"attributes", meta.InstanceFilter{Attrs: map[string]string{"Site": "site-1", "Plan": "paid"}}, "2"},
			{"absent attribute", meta.InstanceFilter{Attrs: map[string]string{"Site": ""}}, ""},
			{"list holds one", meta.InstanceFilter{AttrAny: map[string][]string{"Users": {"ann"}}}, "0"},
			{"list holds any", meta.InstanceFilter{AttrAny: map[string][]string{"Users": {"bob", "annie"}}}, "310"},
			{"list value is no prefix", meta.InstanceFilter{AttrAny: map[string][]string{"Users": {"an", "nnie"}}}, ""},
			{"list holds none", meta.InstanceFilter{AttrNone: map[string][]string{"Users": {"bob"}}}, "432"},
			{"list any and none", meta.InstanceFilter{AttrAny: map[string][]string{"Users": {"bob"}}, AttrNone: map[string][]string{"Users": {"ann"}}}, "1"},
			{"list without values", meta.InstanceFilter{AttrAny: map[string][]string{"Users": {}}}, "43210"},
			{"statuses", meta.InstanceFilter{Statuses: []string{"Stopping", "Pending"}, Now: t0}, "4"},
			{"statuses settled", meta.InstanceFilter{Statuses: []string{"Stopped", "Running"}, Now: t0.Add(2 * time.Hour)}, "43210"},
			{"statuses and status", meta.InstanceFilter{Statuses: []string{"Stopped", "Running"}, Status: "Stopped", Now: t0.Add(2 * time.Hour)}, "4"},
			{"no statuses", meta.InstanceFilter{Statuses: []string{}}, ""},
		} {
			tc.f.AccountID = "acc1"
			got, n, err := tx.ListInstances(tc.f)
			if err != nil {
				return err
			}
			ids := ""
			for _, in := range got {
				ids += strings.TrimPrefix(in.ID, "i-")
			}
			if ids != tc.want || n != len(tc.want) {
				t.Errorf("%s: got %q (total %d), want %q", tc.name, ids, n, tc.want)
			}
		}
		return nil
	})
}

func testDisks(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error {
		for i := 0; i < 4; i++ {
			d := &meta.Disk{ID: fmt.Sprintf("d-%d", i), AccountID: "acc1", RegionID: "cn-hangzhou", ZoneID: "z", Type: "data",
				Category: "cloud_essd", Status: "Available", SizeGiB: 20, CreatedAt: t0.Add(time.Duration(i) * time.Second)}
			if i%2 == 0 {
				d.InstanceID, d.Status, d.Type = "i-1", "In_use", "system"
			}
			if err := tx.PutDisk(d); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx meta.Tx) error {
		got, n, err := tx.ListDisks(meta.DiskFilter{AccountID: "acc1", InstanceID: "i-1"})
		if err != nil {
			return err
		}
		if n != 2 || len(got) != 2 || got[0].SizeGiB != 20 {
			t.Errorf("by instance: n=%d", n)
		}
		_, n, _ = tx.ListDisks(meta.DiskFilter{AccountID: "acc1", IDs: []string{}})
		if n != 0 {
			t.Errorf("empty ID list matched %d", n)
		}
		_, n, _ = tx.ListDisks(meta.DiskFilter{AccountID: "acc1", IDs: []string{"d-1", "d-3", "d-9"}, Status: "Available", Now: t0})
		if n != 2 {
			t.Errorf("ids+status matched %d, want 2", n)
		}
		return nil
	})
}

// testDiskFlags: DescribeDisks' filters on a disk's flags, encryption
// key and creation time select exactly the disks that have them.
func testDiskFlags(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error {
		for i := 0; i < 6; i++ {
			d := &meta.Disk{ID: fmt.Sprintf("d-%d", i), AccountID: "acc1", RegionID: "cn-hangzhou", ZoneID: "z", Type: "data",
				Category: "cloud_essd", Status: "Available", SizeGiB: 20, CreatedAt: t0.Add(time.Duration(i) * time.Hour),
				Portable: i%2 == 0, DeleteWithInstance: i%3 == 0, DeleteAutoSnapshot: i == 1, MultiAttach: i == 5, InArrears: i == 2}
			if i >= 4 {
				d.Encrypted, d.KMSKeyID = true, fmt.Sprintf("key-%d", i)
			}
			if err := tx.PutDisk(d); err != nil {
				return err
			}
		}
		return nil
	})
	yes, no := true, false
	view(t, s, func(tx meta.Tx) error {
		for _, tc := range []struct {
			name string
			f    meta.DiskFilter
			want string
		}{
			{"portable", meta.DiskFilter{Portable: &yes}, "d-4 d-2 d-0"},
			{"not portable", meta.DiskFilter{Portable: &no}, "d-5 d-3 d-1"},
			{"delete with instance", meta.DiskFilter{DeleteWithInstance: &yes}, "d-3 d-0"},
			{"delete auto snapshot", meta.DiskFilter{DeleteAutoSnapshot: &yes}, "d-1"},
			{"encrypted", meta.DiskFilter{Encrypted: &yes}, "d-5 d-4"},
			{"not encrypted, portable", meta.DiskFilter{Encrypted: &no, Portable: &yes}, "d-2 d-0"},
			{"multi-attach", meta.DiskFilter{MultiAttach: &yes}, "d-5"},
			{"KMS key", meta.DiskFilter{KMSKeyID: "key-4"}, "d-4"},
			{"in arrears", meta.DiskFilter{InArrears: &yes}, "d-2"},
			{"created in [1h, 3h]", meta.DiskFilter{CreatedAfter: t0.Add(time.Hour), CreatedBefore: t0.Add(3 * time.Hour)}, "d-3 d-2 d-1"},
		} {
			tc.f.AccountID = "acc1"
			got, n, err := tx.ListDisks(tc.f)
			if err != nil {
				return err
			}
			var ids []string
			for _, d := range got {
				ids = append(ids, d.ID)
			}
			if strings.Join(ids, " ") != tc.want || n != len(ids) {
				t.Errorf("%s: %v (total %d), want %s", tc.name, ids, n, tc.want)
			}
		}
		return nil
	})
}

func testSnapshots(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error {
		for i := 0; i < 25; i++ {
			sn := &meta.Snapshot{ID: fmt.Sprintf("s-%02d", i), AccountID: "acc1", RegionID: "cn-hangzhou", DiskID: "d-1",
				Status: "accomplished", Type: "user", DiskType: "data", Category: "standard", Usage: "none",
				CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
			if i%5 == 0 {
				sn.Status, sn.DiskID = "progressing", "d-2"
				sn.Tags = []meta.Tag{{Key: "k", Value: "v"}}
			}
			if i%8 == 0 {
				sn.Encrypted, sn.KMSKeyID = true, "key-1"
			}
			if i == 24 {
				sn.DiskID, sn.RegionID = "d-3", "cn-beijing"
			}
			if i%10 == 3 {
				sn.InstanceID = fmt.Sprintf("i-%d", i/10)
			}
			if err := tx.PutSnapshot(sn); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx meta.Tx) error {
		got, n, err := tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc1", Page: meta.Page{Offset: 10, Limit: 10}})
		if err != nil {
			return err
		}
		if n != 25 || len(got) != 10 || got[0].ID != "s-14" {
			t.Errorf("page 2: total %d len %d first %v", n, len(got), got)
		}
		got, _, _ = tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc1", InstanceIDs: []string{"i-0", "i-2"}})
		if len(got) != 2 || got[0].ID != "s-23" || got[1].ID != "s-03" {
			t.Errorf("InstanceIDs i-0, i-2: %v", got)
		}
		if _, n, _ := tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc1", InstanceIDs: []string{}}); n != 0 {
			t.Errorf("empty InstanceIDs selected %d snapshots", n)
		}
		_, n, _ = tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc1", DiskID: "d-2", Status: "progressing"})
		if n != 5 {
			t.Errorf("disk+status: %d, want 5", n)
		}
		_, n, _ = tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc1", Tags: []meta.TagFilter{{Key: "k"}}})
		if n != 5 {
			t.Errorf("tag key: %d, want 5", n)
		}
		_, n, _ = tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc1", CreatedAfter: t0.Add(20 * time.Minute)})
		if n != 5 {
			t.Errorf("created after: %d, want 5", n)
		}
		_, n, _ = tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc2"})
		if n != 0 {
			t.Errorf("other account sees %d", n)
		}
		_, n, _ = tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc1", KMSKeyID: "key-1"})
		if n != 4 {
			t.Errorf("KMS key: %d, want 4", n)
		}
		_, n, _ = tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc1", DiskIDs: []string{"d-2", "d-3"}})
		if n != 6 {
			t.Errorf("disk list: %d, want 6", n)
		}
		_, n, _ = tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc1", DiskIDs: []string{}})
		if n != 0 {
			t.Errorf("empty disk list: %d, want 0", n)
		}
		ids, err := tx.SnapshotDiskIDs("acc1", "", "cn-hangzhou")
		if err != nil || fmt.Sprint(ids) != "[d-1 d-2]" {
			t.Errorf("source disks in a region: %v %v", ids, err)
		}
		ids, _ = tx.SnapshotDiskIDs("acc1", "", "")
		if fmt.Sprint(ids) != "[d-1 d-2 d-3]" {
			t.Errorf("source disks: %v", ids)
		}
		if ids, _ = tx.SnapshotDiskIDs("acc1", "ecd", ""); len(ids) != 0 {
			t.Errorf("source disks of another product: %v", ids)
		}
		return nil
	})
	update(t, s, func(tx meta.Tx) error {
		if err := tx.DeleteSnapshot("acc1", "s-00"); err != nil {
			return err
		}
		_, n, _ := tx.ListSnapshots(meta.SnapshotFilter{AccountID: "acc1", Tags: []meta.TagFilter{{Key: "k", Value: "v", HasValue: true}}})
		if n != 4 {
			t.Errorf("tags of deleted snapshot still match: %d", n)
		}
		return nil
	})
}

func testExpiry(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error {
		for i, exp := range []time.Time{{}, t0.Add(time.Hour), t0.Add(48 * time.Hour)} {
			if err := tx.PutSnapshot(&meta.Snapshot{ID: fmt.Sprintf("s-%d", i), AccountID: "a", ExpiresAt: exp, CreatedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx meta.Tx) error {
		got, err := tx.ExpiredSnapshots(t0.Add(2*time.Hour), 10)
		if err != nil {
			return err
		}
		if len(got) != 1 || got[0].ID != "s-1" {
			t.Errorf("expired = %v", got)
		}
		return nil
	})
}

func testTokens(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error {
		return tx.PutToken(&meta.IdempotencyToken{AccountID: "a", Action: "CreateSnapshot", Token: "t1", ParamsHash: "h", CreatedAt: t0})
	})
	update(t, s, func(tx meta.Tx) error {
		tok, err := tx.GetToken("a", "CreateSnapshot", "t1")
		if err != nil {
			return err
		}
		tok.ResultID = "s-1"
		return tx.PutToken(tok)
	})
	view(t, s, func(tx meta.Tx) error {
		tok, err := tx.GetToken("a", "CreateSnapshot", "t1")
		if err != nil || tok.ResultID != "s-1" || tok.ParamsHash != "h" {
			t.Errorf("token = %+v, %v", tok, err)
		}
		if _, err := tx.GetToken("a", "CreateDisk", "t1"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("token is per action: %v", err)
		}
		return nil
	})
}

func testNonces(t *testing.T, s meta.Store) {
	use := func(n string, now time.Time) bool {
		var fresh bool
		update(t, s, func(tx meta.Tx) (err error) {
			fresh, err = tx.UseNonce("AK", n, now, now.Add(15*time.Minute))
			return err
		})
		return fresh
	}
	if !use("n1", t0) {
		t.Error("first use is not fresh")
	}
	if use("n1", t0.Add(time.Minute)) {
		t.Error("replay accepted")
	}
	if !use("n1", t0.Add(16*time.Minute)) {
		t.Error("expired nonce not reusable")
	}
}

// testSerialised: many concurrent read-check-write transactions on one
// counter lose no update, the property CreateSnapshot relies on.
func testSerialised(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error { return tx.PutDisk(&meta.Disk{ID: "d-c", AccountID: "a", CreatedAt: t0}) })
	var wg sync.WaitGroup
	const n = 20
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(context.Background(), func(tx meta.Tx) error {
				d, err := tx.GetDisk("a", "d-c")
				if err != nil {
					return err
				}
				d.SizeGiB++
				return tx.PutDisk(d)
			})
			if err != nil {
				t.Errorf("update: %v", err)
			}
		}()
	}
	wg.Wait()
	view(t, s, func(tx meta.Tx) error {
		d, err := tx.GetDisk("a", "d-c")
		if err == nil && d.SizeGiB != n {
			t.Errorf("counter = %d, want %d", d.SizeGiB, n)
		}
		return err
	})
}

// testProducts: each product lists only its own records unless it asks
// for every product.
func testProducts(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error {
		for _, p := range []string{"", "ecd"} {
			if err := tx.PutDisk(&meta.Disk{ID: "d-" + p + "x", AccountID: "a", Product: p, CreatedAt: t0}); err != nil {
				return err
			}
			if err := tx.PutSnapshot(&meta.Snapshot{ID: "s-" + p + "x", AccountID: "a", Product: p, CreatedAt: t0}); err != nil {
				return err
			}
			if err := tx.PutInstance(&meta.Instance{ID: "i-" + p + "x", AccountID: "a", Product: p, CreatedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx meta.Tx) error {
		d, _, _ := tx.ListDisks(meta.DiskFilter{AccountID: "a", Product: "ecd"})
		sn, _, _ := tx.ListSnapshots(meta.SnapshotFilter{AccountID: "a"})
		_, all, _ := tx.ListInstances(meta.InstanceFilter{AccountID: "a", Product: meta.AnyProduct})
		if len(d) != 1 || d[0].ID != "d-ecdx" || len(sn) != 1 || sn[0].ID != "s-x" || all != 2 {
			t.Errorf("product filters: disks %v snapshots %v instances %d", d, sn, all)
		}
		return nil
	})
}
