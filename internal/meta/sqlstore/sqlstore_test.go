package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/meta/metatest"
)

func TestSQLiteConformance(t *testing.T) {
	metatest.Run(t, func(t *testing.T) meta.Store {
		s, err := OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "meta.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestReopen: a committed update is there after the store is closed and
// opened again, and migrations are not re-applied.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	ctx := context.Background()
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx meta.Tx) error { return tx.PutAccount(&meta.Account{ID: "a1", Name: "x"}) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.View(ctx, func(tx meta.Tx) error {
		a, err := tx.GetAccount("a1")
		if err == nil && a.Name != "x" {
			t.Errorf("name = %q", a.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestSplitStatements(t *testing.T) {
	got := splitStatements("-- c\nCREATE TABLE a (x INT);\n\nCREATE INDEX i ON a (x);\n")
	if len(got) != 2 || got[1] != "CREATE INDEX i ON a (x);" {
		t.Errorf("got %q", got)
	}
}

// TestMigrateFromSchema1: a database made by the first schema, with data,
// is brought up to date by Open and keeps its records (ECS by default).
func TestMigrateFromSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := migrations.ReadFile("migrations/0001_init.sql")
	for _, stmt := range splitStatements(string(body)) {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	mustExec := func(q string, args ...any) {
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY)`)
	mustExec(`INSERT INTO schema_migrations (version) VALUES (1)`)
	mustExec(`INSERT INTO snapshots (id, account_id, region_id, disk_id, instance_id, name, status, type, disk_type, category, usage, resource_group_id, encrypted, created_at, expires_at, data)
		VALUES ('s-old', 'a', 'r', 'd', '', 'n', 'accomplished', 'user', 'data', 'standard', 'none', 'rg', 0, 1, 0, '{"ID":"s-old","AccountID":"a"}')`)
	mustExec(`INSERT INTO disks (id, account_id, region_id, zone_id, instance_id, name, type, category, status, target_status, settle_at, source_snapshot_id, resource_group_id, created_at, data)
		VALUES ('d-old', 'a', 'r', 'z', '', 'n', 'data', 'cloud_essd', 'Available', '', 0, '', 'rg', 1, '{"ID":"d-old","AccountID":"a","Portable":true,"Encrypted":true,"KMSKeyID":"k1"}')`)
	mustExec(`INSERT INTO instances (id, account_id, region_id, zone_id, name, status, target_status, settle_at, resource_group_id, created_at, data)
		VALUES ('i-old', 'a', 'r', 'z', 'n', 'Running', '', 0, 'rg', 1, '{"ID":"i-old","AccountID":"a","ImageID":"img-1","InstanceType":"ecs.g7.large","SecurityLocked":true}')`)
	db.Close()
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.View(context.Background(), func(tx meta.Tx) error {
		list, _, err := tx.ListSnapshots(meta.SnapshotFilter{AccountID: "a"})
		if err != nil || len(list) != 1 || list[0].ID != "s-old" {
			t.Errorf("old snapshot after migration: %v %v", list, err)
		}
		// Schema 5 takes a disk's flags from its record.
		yes, no := true, false
		disks, _, err := tx.ListDisks(meta.DiskFilter{AccountID: "a", Portable: &yes, Encrypted: &yes, MultiAttach: &no, KMSKeyID: "k1"})
		if err != nil || len(disks) != 1 || disks[0].ID != "d-old" {
			t.Errorf("old disk by its flags after migration: %v %v", disks, err)
		}
		// Schema 6 takes an instance's image, type and lock from its record.
		insts, _, err := tx.ListInstances(meta.InstanceFilter{AccountID: "a", ImageID: "img-1", InstanceType: "ecs.g7.large", SecurityLocked: &yes})
		if err != nil || len(insts) != 1 || insts[0].ID != "i-old" {
			t.Errorf("old instance by its attributes after migration: %v %v", insts, err)
		}
		return nil
	})
}
