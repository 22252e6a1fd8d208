package engine

import (
	"bytes"
	"testing"

	"github.com/snapstack/snapstack/internal/blob/blobtest"
)

// TestInstantAccessOfLargeSparseDisk: a disk made from a snapshot still
// uploading holds exactly the snapshot's data, taken from its sealed layer
// and from the base its disk was restored from, and only that data: the
// zero ranges of a 1 TiB disk are neither copied nor allocated (the copy
// used to read the whole TiB inside the API call).
func TestInstantAccessOfLargeSparseDisk(t *testing.T) {
	const size = 1 << 40
	f := newFixture(t)
	if err := f.e.CreateDisk(ctx, "d-1", size, ""); err != nil {
		t.Fatal(err)
	}
	a, b, c := randBytes(21, 3<<20), randBytes(22, 1<<20+5), randBytes(23, 2<<20)
	f.write("d-1", a, 0)
	f.write("d-1", b, 100<<30+12345) // unaligned, across chunks
	f.write("d-1", c, size-2<<20)
	f.snapshot("d-1", "s-1")
	// d-2 reads s-1 as its base; its own writes go above it.
	if err := f.e.CreateDisk(ctx, "d-2", size, "s-1"); err != nil {
		t.Fatal(err)
	}
	d := randBytes(24, 1<<20)
	f.write("d-2", d, 500<<30)
	f.write("d-2", []byte{7, 7, 7}, 1<<20) // over a
	release := make(chan struct{})
	f.blobs.SetFault(blobtest.OpPut, func(string) error { <-release; return nil })
	done := f.startSnapshot("d-2", "s-2")
	f.write("d-2", bytes.Repeat([]byte{9}, 1<<20), 100<<30) // after the seal
	if err := f.e.CreateDisk(ctx, "d-3", size, "s-2"); err != nil {
		t.Fatal(err)
	}
	wantA := bytes.Clone(a)
	copy(wantA[1<<20:], []byte{7, 7, 7})
	v, err := f.e.Volume("d-3")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		off  int64
		want []byte
	}{
		{0, wantA},
		{100<<30 + 12345, b},
		{500 << 30, d},
		{size - 2<<20, c},
		{200 << 30, make([]byte, 1<<20)},
		{100<<30 - 1<<20, make([]byte, 1<<20+12345)},
	} {
		got := make([]byte, len(r.want))
		if _, err := v.ReadAt(got, r.off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, r.want) {
			t.Errorf("d-3 at %d differs from the snapshot", r.off)
		}
	}
	var data int64
	if err := v.Extents(0, size, func(n int64, hole, zero bool) bool {
		if !hole {
			data += n
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	// What was written, rounded out to clusters: 3 + 2 + 2 + 1 MiB.
	if data > 9<<20 {
		t.Errorf("d-3 allocates %d bytes for 8 MiB of data", data)
	}
	close(release)
	f.blobs.Clear()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
