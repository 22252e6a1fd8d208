package ecd

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/clock"
	"github.com/snapstack/snapstack/internal/ecs"
	"github.com/snapstack/snapstack/internal/meta/sqlstore"
	"github.com/snapstack/snapstack/internal/param"
)

// heldEngine is a data plane whose snapshots finish at once and whose
// restores wait for release, as a real one does behind a slow store.
type heldEngine struct {
	entered, release chan struct{}
}

func (e *heldEngine) CreateDisk(context.Context, string, int64, string) error { return nil }
func (e *heldEngine) DeleteDisk(context.Context, string) error                { return nil }
func (e *heldEngine) DiskOffline(string)                                      {}
func (e *heldEngine) StartSnapshot(_ context.Context, _ ecs.SnapshotJob, report func(ecs.Progress)) error {
	go report(ecs.Progress{Done: 1, Total: 1, Finished: true})
	return nil
}
func (e *heldEngine) RestoreDisk(context.Context, string, string) error {
	e.entered <- struct{}{}
	<-e.release
	return nil
}
func (e *heldEngine) DeleteSnapshot(context.Context, string) error      { return nil }
func (e *heldEngine) StoredSnapshots(context.Context) ([]string, error) { return nil, nil }
func (e *heldEngine) StoredDisks(context.Context) ([]string, error)     { return nil, nil }

func values(kv ...string) param.Values {
	v := url.Values{"RegionId": {"cn-hangzhou"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return param.New(v)
}

// eventually retries f until it succeeds, for 10 s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

// TestDesktopIsHeldDuringResetSnapshot: while ResetSnapshot restores a
// desktop's disk, the desktop can neither be started (its disk would be
// served and written, and the restore would then drop those writes) nor
// deleted: both get 403 IncorrectDiskStatus, as does a second reset.
// Once the restore is done (and the disk's transition), the desktop
// starts.
func TestDesktopIsHeldDuringResetSnapshot(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	eng := &heldEngine{entered: make(chan struct{}, 1), release: make(chan struct{})}
	cfg := ecs.DefaultConfig()
	cfg.TransitionDelay = 10 * time.Millisecond
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	core, err := ecs.New(store, eng, clock.Real{}, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := core.EnsureRootAccount(ctx, "ak-eds-reset", "secret")
	if err != nil {
		t.Fatal(err)
	}
	c := ecs.Caller{AccountID: acc, AccessKeyID: "ak-eds-reset"}
	s := New(core, log)
	r, err := s.CreateDesktops(ctx, c, values("OfficeSiteId", "cn-hangzhou+dir-1", "BundleId", "b-default",
		"SystemDiskSize", "1", "DataDiskSize", "1"))
	if err != nil {
		t.Fatal(err)
	}
	desk := r.(*CreateDesktopsResponse).DesktopId[0]
	eventually(t, "StopDesktops", func() error {
		_, err := s.StopDesktops(ctx, c, values("DesktopId.1", desk))
		return err
	})
	var snap string
	eventually(t, "CreateSnapshot of the stopped desktop", func() error {
		r, err := s.CreateSnapshot(ctx, c, values("DesktopId", desk, "SourceDiskType", "data", "SnapshotName", "snap-1"))
		if err == nil {
			snap = r.(*CreateSnapshotResponse).SnapshotId
		}
		return err
	})
	reset := values("SnapshotId", snap)
	resetDone := make(chan error, 1)
	eventually(t, "ResetSnapshot reaching the data plane", func() error {
		go func() {
			_, err := s.ResetSnapshot(ctx, c, reset)
			resetDone <- err
		}()
		select {
		case <-eng.entered:
			return nil
		case err := <-resetDone:
			return err // the snapshot not accomplished yet: try again
		}
	})
	wantBusy := func(what string, err error) {
		t.Helper()
		if e := apierr.As(err); e == nil || e.Code != "IncorrectDiskStatus" || e.HTTPStatus != 403 {
			t.Errorf("%s during the reset: %v, want 403 IncorrectDiskStatus", what, err)
		}
	}
	time.Sleep(30 * time.Millisecond) // past every transition delay
	_, err = s.StartDesktops(ctx, c, values("DesktopId.1", desk))
	wantBusy("StartDesktops", err)
	_, err = s.DeleteDesktops(ctx, c, values("DesktopId.1", desk))
	wantBusy("DeleteDesktops", err)
	_, err = s.ResetSnapshot(ctx, c, reset)
	wantBusy("a second ResetSnapshot", err)
	close(eng.release)
	if err := <-resetDone; err != nil {
		t.Fatalf("ResetSnapshot: %v", err)
	}
	// The disk leaves ReIniting after its transition delay.
	eventually(t, "StartDesktops after the reset", func() error {
		_, err := s.StartDesktops(ctx, c, values("DesktopId.1", desk))
		return err
	})
}
