package nbd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/snapstack/snapstack/internal/volume"
)

// Block status against real clients (qemu-img map, nbdinfo --map, nbdsh,
// nbdcopy), on a served volume.Volume with a base, layers, a punched
// cluster and holes.

var _ Extenter = (*volume.Volume)(nil)

// countingVolume counts the Extents calls of a volume.
type countingVolume struct {
	*volume.Volume
	extents atomic.Int64
}

func (v *countingVolume) Extents(off, length int64, fn func(n int64, hole, zero bool) bool) error {
	v.extents.Add(1)
	return v.Volume.Extents(off, length, fn)
}

const mib = 1 << 20

// chunkBase is a volume base of 1 MiB chunks; absent chunks are zeroes and
// reported so (volume.BaseExtenter).
type chunkBase struct {
	data    []byte
	present map[int64]bool
}

func (b *chunkBase) ReadAt(p []byte, off int64) error {
	copy(p, b.data[off:])
	return nil
}

func (b *chunkBase) Close() error { return nil }

func (b *chunkBase) Extents(off, length int64, fn func(n int64, zero bool) bool) error {
	for length > 0 {
		k := off / mib
		n := min(length, (k+1)*mib-off)
		if !fn(n, !b.present[k]) {
			return nil
		}
		off, length = off+n, length-n
	}
	return nil
}

// span is a described range: start, length and its base:allocation bits.
type span struct {
	Start, Length int64
	Hole, Zero    bool
}

// mergeSpans merges adjacent spans of the same kind.
func mergeSpans(in []span) []span {
	var out []span
	for _, s := range in {
		if n := len(out); n > 0 && out[n-1].Hole == s.Hole && out[n-1].Zero == s.Zero && out[n-1].Start+out[n-1].Length == s.Start {
			out[n-1].Length += s.Length
			continue
		}
		out = append(out, s)
	}
	return out
}

// volumeServer serves a 64 MiB volume as "vol": base chunks 0 and 2 hold
// data, the others are zeroes; a sealed layer holds [8, 9) MiB, the head
// [10 MiB, +64 KiB), a copied-up cluster at 5 MiB and a punched cluster
// at 8 MiB + 64 KiB. It returns the volume, its extents and the URI.
func volumeServer(t *testing.T) (*countingVolume, []span, string) {
	const size = 64 * mib
	base := &chunkBase{data: make([]byte, size), present: map[int64]bool{0: true, 2: true}}
	copy(base.data, randomBytes(t, mib))
	copy(base.data[2*mib:], randomBytes(t, mib))
	v, err := volume.Create(filepath.Join(t.TempDir(), "vol"), size, func(string) (volume.Base, error) { return base, nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	step := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(p []byte, off int64) { _, err := v.WriteAt(p, off); step(err) }
	step(v.Reset("s-base"))
	write(randomBytes(t, mib), 8*mib)
	step(v.Seal("s-1"))
	write(randomBytes(t, volume.ClusterSize), 10*mib)
	write([]byte("x"), 5*mib+100)
	step(v.Trim(8*mib+volume.ClusterSize, volume.ClusterSize))
	step(v.Flush())

	var want []span
	var pos int64
	step(v.Extents(0, size, func(n int64, hole, zero bool) bool {
		want = append(want, span{pos, n, hole, zero})
		pos += n
		return true
	}))
	// What the volume says is what the test expects (volume tests check
	// the volume); a sanity check of its main points:
	has := func(s span) bool {
		for _, w := range want {
			if w.Start <= s.Start && s.Start+s.Length <= w.Start+w.Length {
				return w.Hole == s.Hole && w.Zero == s.Zero
			}
		}
		return false
	}
	for _, s := range []span{{0, mib, false, false}, {mib, mib, true, true}, {2 * mib, mib, false, false},
		{3 * mib, 2 * mib, true, true}, {5 * mib, volume.ClusterSize, false, false}, {8 * mib, volume.ClusterSize, false, false},
		{9 * mib, mib, true, true}, {10 * mib, volume.ClusterSize, false, false}, {11 * mib, size - 11*mib, true, true}} {
		if !has(s) {
			t.Fatalf("volume extents %v lack %v", want, s)
		}
	}
	cv := &countingVolume{Volume: v}
	_, addr := startServer(t, statusExports{newMemExports(), map[string]Device{"vol": cv}})
	return cv, want, "nbd://" + addr + "/vol"
}

func TestClientQemuImgMap(t *testing.T) {
	bin := needBinary(t, "qemu-img")
	_, want, uri := volumeServer(t)
	out := run(t, nil, bin, "map", "--output=json", "-f", "raw", uri)
	var entries []struct {
		Start, Length int64
		Data, Zero    bool
	}
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatalf("qemu-img map output: %v\n%s", err, out)
	}
	var got []span
	for _, e := range entries {
		got = append(got, span{e.Start, e.Length, !e.Data, e.Zero})
	}
	if got = mergeSpans(got); !slices.Equal(got, want) {
		t.Fatalf("qemu-img map:\n%v\nwant\n%v", got, want)
	}

	// A device without Extenter is data throughout.
	_, uri = clientServer(t)
	out = run(t, nil, bin, "map", "--output=json", "-f", "raw", uri)
	if err := json.Unmarshal(out, &entries); err != nil || len(entries) != 1 || !entries[0].Data || entries[0].Length != clientDevSize {
		t.Fatalf("qemu-img map of a memory device: %v\n%s", err, out)
	}
}

func TestClientNbdinfoMap(t *testing.T) {
	bin := needBinary(t, "nbdinfo")
	_, want, uri := volumeServer(t)
	out := run(t, nil, bin, "--map", "--json", uri)
	var entries []struct {
		Offset, Length int64
		Type           uint32
	}
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatalf("nbdinfo --map output: %v\n%s", err, out)
	}
	var got []span
	for _, e := range entries {
		got = append(got, span{e.Offset, e.Length, e.Type&stateHole != 0, e.Type&stateZero != 0})
	}
	if got = mergeSpans(got); !slices.Equal(got, want) {
		t.Fatalf("nbdinfo --map:\n%v\nwant\n%v", got, want)
	}
}

func TestClientNbdshBlockStatus(t *testing.T) {
	bin := needBinary(t, "nbdsh")
	_, want, uri := volumeServer(t)
	script := fmt.Sprintf(`
import json
h.add_meta_context("base:allocation")
h.connect_uri(%q)
assert h.can_meta_context("base:allocation")
size = h.get_size()
spans = []
def cb(ctx, off, entries, err):
    assert ctx == "base:allocation", ctx
    for i in range(0, len(entries), 2):
        spans.append([off, entries[i], entries[i+1]])
        off += entries[i]
    return 0
pos = 0
while pos < size:
    n = len(spans)
    h.block_status(min(size - pos, 1 << 30), pos, cb)
    pos = spans[-1][0] + spans[-1][1]
# REQ_ONE: one extent, no longer than asked.
one = []
h.block_status(3 << 20, 0, lambda ctx, off, e, err: one.extend(e) or 0, nbd.CMD_FLAG_REQ_ONE)
assert len(one) == 2 and one[0] == 1 << 20 and one[1] == 0, one
one.clear()
h.block_status(4096, (1 << 20) + 100, lambda ctx, off, e, err: one.extend(e) or 0, nbd.CMD_FLAG_REQ_ONE)
assert one == [4096, 3], one
print(json.dumps(spans))
`, uri)
	out := run(t, []string{"PATH=/usr/bin:" + os.Getenv("PATH")}, bin, "-c", script)
	var raw [][3]int64
	if err := json.Unmarshal(bytes.TrimSpace(out), &raw); err != nil {
		t.Fatalf("nbdsh output: %v\n%s", err, out)
	}
	var got []span
	for _, r := range raw {
		got = append(got, span{r[0], r[1], r[2]&stateHole != 0, r[2]&stateZero != 0})
	}
	if got = mergeSpans(got); !slices.Equal(got, want) {
		t.Fatalf("nbdsh block_status:\n%v\nwant\n%v", got, want)
	}
}

// TestClientCopyVolume: qemu-img convert and nbdcopy (both use block
// status to skip zeroes) copy the volume's content exactly.
func TestClientCopyVolume(t *testing.T) {
	v, _, uri := volumeServer(t)
	content := make([]byte, v.Size())
	if _, err := v.ReadAt(content, 0); err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"qemu-img", "nbdcopy"} {
		t.Run(tool, func(t *testing.T) {
			bin := needBinary(t, tool)
			before := v.extents.Load()
			out := filepath.Join(t.TempDir(), "out.raw")
			if tool == "qemu-img" {
				run(t, nil, bin, "convert", "-f", "raw", "-O", "raw", uri, out)
			} else {
				run(t, nil, bin, uri, out)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, content) {
				t.Fatalf("%s copy (%d bytes) differs from the volume", tool, len(got))
			}
			if v.extents.Load() == before {
				t.Fatalf("%s sent no BLOCK_STATUS", tool)
			}
		})
	}
}

func (s span) String() string {
	var kind []string
	if s.Hole {
		kind = append(kind, "hole")
	}
	if s.Zero {
		kind = append(kind, "zero")
	}
	if len(kind) == 0 {
		kind = append(kind, "data")
	}
	return fmt.Sprintf("[%d+%d %s]", s.Start, s.Length, strings.Join(kind, ","))
}
