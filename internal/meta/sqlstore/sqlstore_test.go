package sqlstore

import (
	"context"
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
