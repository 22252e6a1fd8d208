package metatest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/meta"
)

// testDSW checks the PAI-DSW records: round trip, account scoping,
// filters, the three sort orders in both directions, paging and deletion.
func testDSW(t *testing.T, s meta.Store) {
	update(t, s, func(tx meta.Tx) error {
		for i := 0; i < 3; i++ {
			in := &meta.DSWInstance{ID: fmt.Sprintf("dsw-%d", i), AccountID: "acc1", WorkspaceID: "ws1", Name: fmt.Sprintf("nb_%d", i),
				Status: "Running", Priority: 3 - i, UpperDir: "/data/dsw/upper", ManagedDir: true,
				Env: map[string]string{"A": "1"}, Labels: []meta.Tag{{Key: "team", Value: fmt.Sprint(i % 2)}},
				CreatedAt: t0.Add(time.Duration(i) * time.Minute), ModifiedAt: t0.Add(time.Duration(10-i) * time.Minute)}
			if i == 2 {
				in.Status, in.TargetStatus, in.SettleAt = "Stopping", "Stopped", t0.Add(time.Hour)
			}
			if err := tx.PutDSWInstance(in); err != nil {
				return err
			}
		}
		for i := 0; i < 5; i++ {
			st := "Available"
			if i == 4 {
				st = "Pushing"
			}
			sn := &meta.DSWSnapshot{ID: fmt.Sprintf("snp-%d", i), AccountID: "acc1", InstanceID: "dsw-0", Name: fmt.Sprintf("v%d", i),
				ImageURL: "127.0.0.1:5000/ns/repo:v", Labels: []meta.Tag{{Key: "k", Value: "v"}}, ExcludePaths: []string{"/tmp"},
				Status: st, CreatedAt: t0.Add(time.Duration(i) * time.Second), ModifiedAt: t0}
			if err := tx.PutDSWSnapshot(sn); err != nil {
				return err
			}
		}
		return tx.PutDSWSnapshot(&meta.DSWSnapshot{ID: "snp-other", AccountID: "acc2", InstanceID: "dsw-x", Status: "Saving", CreatedAt: t0})
	})
	view(t, s, func(tx meta.Tx) error {
		in, err := tx.GetDSWInstance("acc1", "dsw-1")
		if err != nil {
			return err
		}
		if in.Name != "nb_1" || in.Env["A"] != "1" || !in.ManagedDir || len(in.Labels) != 1 || !in.CreatedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("instance round trip = %+v", in)
		}
		if _, err := tx.GetDSWInstance("acc2", "dsw-1"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("other account sees the instance: %v", err)
		}
		ids := func(f meta.DSWInstanceFilter) string {
			got, _, err := tx.ListDSWInstances(f)
			if err != nil {
				t.Fatal(err)
			}
			out := ""
			for _, g := range got {
				out += g.ID[4:]
			}
			return out
		}
		for _, c := range []struct {
			f    meta.DSWInstanceFilter
			want string
		}{
			{meta.DSWInstanceFilter{AccountID: "acc1"}, "210"},
			{meta.DSWInstanceFilter{AccountID: "acc1", Ascending: true}, "012"},
			{meta.DSWInstanceFilter{AccountID: "acc1", SortBy: meta.DSWSortModified}, "012"},
			{meta.DSWInstanceFilter{AccountID: "acc1", SortBy: meta.DSWSortPriority, Ascending: true}, "210"},
			{meta.DSWInstanceFilter{AccountID: "acc1", Status: "Running", Now: t0}, "10"},
			{meta.DSWInstanceFilter{AccountID: "acc1", Status: "Stopped", Now: t0.Add(2 * time.Hour)}, "2"},
			{meta.DSWInstanceFilter{AccountID: "acc1", Name: "nb_1"}, "1"},
			{meta.DSWInstanceFilter{AccountID: "acc1", InstanceID: "dsw-0"}, "0"},
			{meta.DSWInstanceFilter{AccountID: "acc1", Labels: []meta.TagFilter{{Key: "team", Value: "0", HasValue: true}}}, "20"},
			{meta.DSWInstanceFilter{AccountID: "acc1", Page: meta.Page{Offset: 1, Limit: 1}}, "1"},
			{meta.DSWInstanceFilter{AccountID: "acc2"}, ""},
		} {
			if got := ids(c.f); got != c.want {
				t.Errorf("ListDSWInstances(%+v) = %q, want %q", c.f, got, c.want)
			}
		}
		sn, err := tx.GetDSWSnapshot("acc1", "snp-3")
		if err != nil {
			return err
		}
		if sn.Name != "v3" || len(sn.ExcludePaths) != 1 || sn.Labels[0].Key != "k" {
			t.Errorf("snapshot round trip = %+v", sn)
		}
		got, n, err := tx.ListDSWSnapshots(meta.DSWSnapshotFilter{AccountID: "acc1", InstanceID: "dsw-0", Page: meta.Page{Offset: 1, Limit: 2}})
		if err != nil {
			return err
		}
		if n != 5 || len(got) != 2 || got[0].ID != "snp-3" || got[1].ID != "snp-2" {
			t.Errorf("snapshot page: n=%d got=%v", n, got)
		}
		got, _, _ = tx.ListDSWSnapshots(meta.DSWSnapshotFilter{AccountID: "acc1", Ascending: true, Page: meta.Page{Limit: 1}})
		if len(got) != 1 || got[0].ID != "snp-0" {
			t.Errorf("ascending first = %v", got)
		}
		got, n, _ = tx.ListDSWSnapshots(meta.DSWSnapshotFilter{Statuses: []string{"Saving", "Pushing"}})
		if n != 2 || len(got) != 2 {
			t.Errorf("unfinished of every account: %d", n)
		}
		return nil
	})
	update(t, s, func(tx meta.Tx) error {
		if err := tx.DeleteDSWSnapshot("acc2", "snp-0"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("delete of another account's snapshot: %v", err)
		}
		if err := tx.DeleteDSWSnapshot("acc1", "snp-0"); err != nil {
			return err
		}
		if err := tx.DeleteDSWInstance("acc1", "dsw-0"); err != nil {
			return err
		}
		if err := tx.DeleteDSWInstance("acc1", "dsw-0"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
		return nil
	})
	view(t, s, func(tx meta.Tx) error {
		if _, err := tx.GetDSWSnapshot("acc1", "snp-0"); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("deleted snapshot: %v", err)
		}
		if _, n, _ := tx.ListDSWInstances(meta.DSWInstanceFilter{AccountID: "acc1", Labels: []meta.TagFilter{{Key: "team"}}}); n != 2 {
			t.Errorf("labels of a deleted instance still match: %d", n)
		}
		return nil
	})
}
