package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/snapstack/snapstack/internal/chunk"
)

func TestRoundTripAndDerive(t *testing.T) {
	m := New(10<<20, 1<<20, "s-parent")
	m.Set(3, chunk.Sum([]byte("a")))
	m.Set(9, chunk.Sum([]byte("b")))
	m.Set(1, chunk.Sum([]byte("c")))
	m.Clear(1)
	m.Patch(5, 64<<10, 128<<10, chunk.Sum([]byte("d")), false)
	got, err := Decode(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 10<<20 || got.ChunkSize != 1<<20 || got.Parent != "s-parent" || got.Len() != 3 {
		t.Fatalf("decoded %+v", got)
	}
	if id, ok := got.Whole(9); !ok || id != chunk.Sum([]byte("b")) {
		t.Error("entry 9 lost")
	}
	if got.Fragments(1) != 0 {
		t.Error("cleared entry came back")
	}
	if ps := got.Pieces(5, nil); len(ps) != 1 || ps[0] != (Piece{Off: 64 << 10, Len: 128 << 10, ID: chunk.Sum([]byte("d"))}) {
		t.Errorf("pieces of 5: %+v", ps)
	}
	small := got.Derive(5<<20, "s-x")
	if small.Len() != 1 || small.Parent != "s-x" {
		t.Errorf("derive to a smaller disk kept %d entries", small.Len())
	}
	// A derived manifest is a copy: patching it leaves the original alone.
	d := got.Derive(10<<20, "s-y")
	d.Patch(5, 0, 64<<10, chunk.Sum([]byte("e")), false)
	if got.Fragments(5) != 1 || d.Fragments(5) != 2 {
		t.Errorf("fragments after patching the copy: original %d, copy %d", got.Fragments(5), d.Fragments(5))
	}
}

func TestPatchSplitsAndJoins(t *testing.T) {
	a, b := chunk.Sum([]byte("a")), chunk.Sum([]byte("b"))
	m := New(4<<20, 1<<20, "")
	m.Set(0, a)
	m.Patch(0, 256<<10, 64<<10, b, false)
	want := []Piece{
		{Off: 0, Len: 256 << 10, ObjOff: 0, ID: a},
		{Off: 256 << 10, Len: 64 << 10, ObjOff: 0, ID: b},
		{Off: 320 << 10, Len: 704 << 10, ObjOff: 320 << 10, ID: a},
	}
	if got := m.Pieces(0, nil); !equalPieces(got, want) {
		t.Fatalf("after patch: %+v", got)
	}
	// Zeroing the hole leaves a gap; putting a back where it was joins
	// the pieces into the whole chunk again.
	m.Patch(0, 256<<10, 64<<10, chunk.ID{}, true)
	if m.Fragments(0) != 2 {
		t.Fatalf("after zeroing: %+v", m.Pieces(0, nil))
	}
	m.Patch(0, 0, 1<<20, a, false)
	if id, ok := m.Whole(0); !ok || id != a {
		t.Fatalf("overwriting the whole chunk: %+v", m.Pieces(0, nil))
	}
	m.Patch(0, 0, 1<<20, chunk.ID{}, true)
	if m.Len() != 0 {
		t.Fatal("zeroing the whole chunk kept an entry")
	}
	// A short last chunk: a patch past its end is cut, and the chunk
	// stays one piece of its length (the object may be longer: a whole
	// entry would take all of it once the disk grows).
	s := New(1<<20+100, 1<<20, "")
	s.Patch(1, 0, 1<<20, a, false)
	if _, ok := s.Whole(1); ok || !equalPieces(s.Pieces(1, nil), []Piece{{Off: 0, Len: 100, ID: a}}) {
		t.Fatalf("short chunk: %+v", s.Pieces(1, nil))
	}
}

// A disk that grows keeps its old short last chunk's length: the bytes
// past the old end are zeroes whatever its object holds, also for a
// whole entry (as manifests written before the rule above hold).
func TestDeriveGrownKeepsShortChunkLength(t *testing.T) {
	a := chunk.Sum([]byte("a"))
	m := New(1<<20+100, 1<<20, "")
	m.Set(0, a)
	m.Set(1, a) // whole, of a 100-byte chunk
	c := m.Derive(3<<20, "s-1")
	if id, ok := c.Whole(0); !ok || id != a {
		t.Errorf("full chunk 0: %+v", c.Pieces(0, nil))
	}
	if got := c.Pieces(1, nil); !equalPieces(got, []Piece{{Off: 0, Len: 100, ID: a}}) {
		t.Errorf("old short chunk 1 after growing: %+v, want one piece of 100 bytes", got)
	}
	// Same size: nothing changes.
	if id, ok := m.Derive(1<<20+100, "s-1").Whole(1); !ok || id != a {
		t.Error("derived at the same size, the short chunk is no longer whole")
	}
}

func equalPieces(a, b []Piece) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPatchModel applies random patches to a manifest and to a plain
// byte model of the disk, and checks that the pieces (and their encoded
// round trip) read back exactly the model.
func TestPatchModel(t *testing.T) {
	const chunkSize, chunks = 64, 4
	size := int64(chunkSize*chunks - 10)
	r := rand.New(rand.NewPCG(1, 2))
	objects := map[chunk.ID][]byte{}
	model := make([]byte, size)
	m := New(size, chunkSize, "")
	for step := 0; step < 3000; step++ {
		k := r.Int64N(chunks)
		cl := min(int64(chunkSize), size-k*chunkSize)
		off := r.Int64N(cl)
		n := 1 + r.Int64N(cl-off)
		if r.IntN(8) == 0 {
			off, n = 0, cl
		}
		zero := r.IntN(5) == 0
		var id chunk.ID
		region := model[k*chunkSize+off : k*chunkSize+off+n]
		if zero {
			clear(region)
		} else {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(1 + r.IntN(255))
			}
			copy(region, data)
			if r.IntN(2) == 0 {
				// The data at an offset inside a larger object.
				skip := 1 + r.IntN(10)
				obj := append(make([]byte, skip), data...)
				obj[0] ^= byte(step) // distinct objects
				id = chunk.Sum(obj)
				objects[id] = obj
				m.PatchFrom(k, off, n, id, int64(skip))
				continue
			}
			id = chunk.Sum(data)
			objects[id] = data
		}
		m.Patch(k, off, n, id, zero)
		if step%500 == 0 || step == 2999 {
			for _, mm := range []*Manifest{m, mustDecode(t, m.Encode())} {
				if got := render(mm, objects); !bytes.Equal(got, model) {
					t.Fatalf("step %d: manifest reads\n%x\nmodel\n%x", step, got, model)
				}
			}
		}
	}
}

func mustDecode(t *testing.T, raw []byte) *Manifest {
	t.Helper()
	m, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func render(m *Manifest, objects map[chunk.ID][]byte) []byte {
	out := make([]byte, m.Size)
	for _, k := range m.Indices() {
		for _, p := range m.Pieces(k, nil) {
			obj := objects[p.ID]
			dst := out[k*m.ChunkSize+int64(p.Off) : k*m.ChunkSize+int64(p.Off+p.Len)]
			if int(p.ObjOff) < len(obj) {
				copy(dst, obj[p.ObjOff:])
			}
		}
	}
	return out
}

func TestDecodeVersion1(t *testing.T) {
	le := binary.LittleEndian
	a := chunk.Sum([]byte("a"))
	var b []byte
	b = append(b, "SSMF"...)
	b = append(b, 1)
	b = le.AppendUint64(b, 4<<20)
	b = le.AppendUint32(b, 1<<20)
	b = le.AppendUint16(b, 3)
	b = append(b, "s-p"...)
	b = le.AppendUint64(b, 1)
	b = le.AppendUint64(b, 2)
	b = append(b, a[:]...)
	sum := chunk.Sum(b)
	b = append(b, sum[:]...)
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := m.Whole(2); !ok || id != a || m.Len() != 1 || m.Parent != "s-p" {
		t.Fatalf("version 1 decoded as %+v", m)
	}
}

func TestCorruptionDetected(t *testing.T) {
	m := New(4<<20, 1<<20, "")
	m.Set(0, chunk.Sum([]byte("x")))
	m.Patch(2, 4096, 8192, chunk.Sum([]byte("y")), false)
	raw := m.Encode()
	for i := 0; i < len(raw); i++ {
		bad := append([]byte(nil), raw...)
		bad[i] ^= 0x10
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	for n := 0; n < len(raw); n++ {
		if _, err := Decode(raw[:n]); err == nil {
			t.Fatalf("truncated to %d decoded", n)
		}
	}
}
