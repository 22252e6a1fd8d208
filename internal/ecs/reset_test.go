package ecs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/meta/sqlstore"
)

// blockingRestore is a recording engine whose RestoreDisk waits for
// release (as the real one does behind an earlier hydration or a slow
// store) and then returns fail.
type blockingRestore struct {
	recordingEngine
	entered, release chan struct{}
	fail             error
}

func (e *blockingRestore) RestoreDisk(context.Context, string, string) error {
	e.entered <- struct{}{}
	<-e.release
	return e.fail
}

// resetFixture is a stopped instance with a data disk and an accomplished
// snapshot of it, on a service whose restores block.
func resetFixture(t *testing.T) (s *Service, c Caller, eng *blockingRestore, inst, disk string) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	eng = &blockingRestore{entered: make(chan struct{}, 1), release: make(chan struct{}, 1)}
	cfg := DefaultConfig()
	cfg.TransitionDelay = 10 * time.Millisecond
	s, err = New(store, eng, clock.Real{}, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := s.EnsureRootAccount(ctx, "ak-reset", "secret")
	if err != nil {
		t.Fatal(err)
	}
	c = Caller{AccountID: acc, AccessKeyID: "ak-reset"}
	r, err := s.RunInstances(ctx, c, values("RegionId", "cn-hangzhou", "ZoneId", "cn-hangzhou-h", "ImageId", "aliyun_3_x64",
		"InstanceType", "ecs.g7.large", "DataDisk.1.Category", "cloud_essd", "DataDisk.1.Size", "40"))
	if err != nil {
		t.Fatal(err)
	}
	inst = r.(*RunInstancesResponse).InstanceIdSets.InstanceIdSet[0]
	time.Sleep(30 * time.Millisecond)
	store.View(ctx, func(tx meta.Tx) error {
		ds, _, err := tx.ListDisks(meta.DiskFilter{AccountID: acc, InstanceID: inst})
		for _, d := range ds {
			if d.Type == "data" {
				disk = d.ID
			}
		}
		return err
	})
	if _, err := s.StopInstance(ctx, c, values("InstanceId", inst)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	putSnap(t, s, c, "s-old", disk, "data", nil)
	return s, c, eng, inst, disk
}

func diskStatus(t *testing.T, s *Service, c Caller, id string) string {
	t.Helper()
	var st string
	s.store.View(context.Background(), func(tx meta.Tx) error {
		d, err := tx.GetDisk(c.AccountID, id)
		if err != nil {
			t.Fatal(err)
		}
		settleDisk(d, s.clock.Now())
		st = d.Status
		return nil
	})
	return st
}

// TestResetDiskHoldsTheDiskUntilRestored: while ResetDisk's restore runs
// (however long it takes), the disk stays ReIniting, its instance does
// not start nor go away, and the disk is not exported over NBD, so that nothing a
// client writes then is thrown away by the reset. (The disk used to
// settle back to In_use after the transition delay, restore or not.)
func TestResetDiskHoldsTheDiskUntilRestored(t *testing.T) {
	s, c, eng, inst, disk := resetFixture(t)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := s.ResetDisk(ctx, c, values("DiskId", disk, "SnapshotId", "s-old"))
		done <- err
	}()
	<-eng.entered
	time.Sleep(50 * time.Millisecond) // five transition delays
	if st := diskStatus(t, s, c, disk); st != DiskReIniting {
		t.Errorf("disk during the restore: %s, want ReIniting", st)
	}
	_, err := s.StartInstance(ctx, c, values("InstanceId", inst))
	if !errors.Is(err, apierr.IncorrectDiskStatus) {
		t.Errorf("StartInstance during the restore: %v, want IncorrectDiskStatus", err)
	}
	_, err = s.DeleteInstance(ctx, c, values("InstanceId", inst))
	if !errors.Is(err, apierr.IncorrectDiskStatus) {
		t.Errorf("DeleteInstance during the restore: %v, want IncorrectDiskStatus", err)
	}
	if ok, err := s.Exportable(ctx, disk); ok || err != nil {
		t.Errorf("disk exportable during the restore: %v %v", ok, err)
	}
	eng.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if st := diskStatus(t, s, c, disk); st != DiskInUse {
		t.Errorf("disk after the restore: %s, want In_use", st)
	}
	if _, err := s.StartInstance(ctx, c, values("InstanceId", inst)); err != nil {
		t.Errorf("StartInstance after the restore: %v", err)
	}
}

// TestFailedResetDiskReturnsTheDisk: a restore that fails leaves the disk
// in its former status at once, and the call fails with InternalError.
func TestFailedResetDiskReturnsTheDisk(t *testing.T) {
	s, c, eng, _, disk := resetFixture(t)
	eng.fail = errors.New("store unreachable")
	eng.release <- struct{}{}
	_, err := s.ResetDisk(context.Background(), c, values("DiskId", disk, "SnapshotId", "s-old"))
	<-eng.entered
	if e := apierr.As(err); e == nil || e.HTTPStatus != 500 {
		t.Errorf("failed restore: %v, want a 500", err)
	}
	if st := diskStatus(t, s, c, disk); st != DiskInUse {
		t.Errorf("disk after a failed restore: %s, want In_use", st)
	}
}

// TestResumeEndsInterruptedReset: a crash during the restore leaves the
// disk ReIniting with no end; the next start puts it back in service.
func TestResumeEndsInterruptedReset(t *testing.T) {
	s, c, _, _, disk := resetFixture(t)
	ctx := context.Background()
	err := s.store.Update(ctx, func(tx meta.Tx) error {
		d, err := tx.GetDisk(c.AccountID, disk)
		if err != nil {
			return err
		}
		return BeginReset(tx, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	if st := diskStatus(t, s, c, disk); st != DiskReIniting {
		t.Fatalf("marked disk: %s", st)
	}
	if err := s.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if st := diskStatus(t, s, c, disk); st != DiskInUse {
		t.Errorf("disk after Resume: %s, want In_use", st)
	}
}
