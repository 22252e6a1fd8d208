package engine

import (
	"errors"
	"os"
	"testing"
)

// TestCreateDiskFailedRestoreLeavesNoVolume: CreateDisk with a snapshot
// makes the volume, then restores; when the restore fails (manifest gone,
// request cancelled, store error) the volume is removed. It used to stay
// on disk and open, and no record named it (the callers release only the
// disks they made), so its directory stayed forever.
func TestCreateDiskFailedRestoreLeavesNoVolume(t *testing.T) {
	f := newFixture(t)
	if err := f.e.CreateDisk(ctx, "d-new", diskSize, "s-missing"); err == nil {
		t.Fatal("CreateDisk from a snapshot without data succeeded")
	}
	if _, err := os.Stat(f.e.volDir("d-new")); err == nil {
		t.Error("the volume of the failed CreateDisk is left on disk")
	}
	if _, err := f.e.Volume("d-new"); !errors.Is(err, ErrNoDisk) {
		t.Errorf("the failed disk is still served by the engine: %v", err)
	}
}
