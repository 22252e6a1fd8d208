package manifest

import (
	"errors"
	"testing"

	"github.com/snapstack/snapstack/internal/chunk"
)

func TestRoundTripAndDerive(t *testing.T) {
	m := New(10<<20, 1<<20, "s-parent")
	m.Set(3, chunk.Sum([]byte("a")))
	m.Set(9, chunk.Sum([]byte("b")))
	m.Set(1, chunk.Sum([]byte("c")))
	m.Clear(1)
	got, err := Decode(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 10<<20 || got.ChunkSize != 1<<20 || got.Parent != "s-parent" || got.Len() != 2 {
		t.Fatalf("decoded %+v", got)
	}
	if id, ok := got.Get(9); !ok || id != chunk.Sum([]byte("b")) {
		t.Error("entry 9 lost")
	}
	if _, ok := got.Get(1); ok {
		t.Error("cleared entry came back")
	}
	small := got.Derive(5<<20, "s-x")
	if small.Len() != 1 || small.Parent != "s-x" {
		t.Errorf("derive to a smaller disk kept %d entries", small.Len())
	}
}

func TestCorruptionDetected(t *testing.T) {
	m := New(4<<20, 1<<20, "")
	m.Set(0, chunk.Sum([]byte("x")))
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
