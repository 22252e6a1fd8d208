package chunk

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

func TestSumKnownVector(t *testing.T) {
	// BLAKE3 of the empty input, from the BLAKE3 specification's test vectors.
	const empty = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
	if got := Sum(nil).String(); got != empty {
		t.Fatalf("Sum(nil) = %s, want %s", got, empty)
	}
}

// TestSumMatchesReference: IDs are permanent, so Sum must agree with an
// independent BLAKE3 implementation at every size its SIMD paths split
// on (chunk 1 KiB, the 8- and 16-way batches, a whole 1 MiB chunk, odd
// tails).
func TestSumMatchesReference(t *testing.T) {
	data := random(42, 4<<20+3)
	for _, n := range []int{0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 8 << 10, 8<<10 + 1, 16 << 10, 16<<10 - 1,
		64 << 10, 1<<20 - 1, 1 << 20, 1<<20 + 1, 4 << 20, 4<<20 + 3} {
		if got, want := Sum(data[:n]), ID(blake3.Sum256(data[:n])); got != want {
			t.Fatalf("Sum of %d bytes = %s, reference %s", n, got, want)
		}
	}
	// Every number of chunks up to 3 batches, each with a few tails, at
	// the end of the buffer (no spare capacity past the input) and not.
	for chunks := 1; chunks <= 48; chunks++ {
		for _, tail := range []int{-1, 0, 1, 511} {
			n := chunks<<10 + tail
			for _, in := range [][]byte{data[:n], data[len(data)-n:], data[7 : 7+n : 7+n]} {
				if got, want := Sum(in), ID(blake3.Sum256(in)); got != want {
					t.Fatalf("Sum of %d bytes (cap %d) = %s, reference %s", n, cap(in), got, want)
				}
			}
		}
	}
	// Random sizes up to 1 MiB plus some.
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		n := r.IntN(1<<20 + 5000)
		if got, want := Sum(data[:n]), ID(blake3.Sum256(data[:n])); got != want {
			t.Fatalf("Sum of %d bytes = %s, reference %s", n, got, want)
		}
	}
}

func TestIDText(t *testing.T) {
	id := Sum([]byte("hello"))
	s := id.String()
	if len(s) != 64 || strings.ToLower(s) != s {
		t.Fatalf("String() = %q", s)
	}
	parsed, err := ParseID(s)
	if err != nil || parsed != id {
		t.Fatalf("ParseID(String()) = %s, %v", parsed, err)
	}
	js, err := json.Marshal(map[string]ID{"id": id})
	if err != nil || string(js) != `{"id":"`+s+`"}` {
		t.Fatalf("JSON = %s, %v", js, err)
	}
	var back map[string]ID
	if err := json.Unmarshal(js, &back); err != nil || back["id"] != id {
		t.Fatalf("JSON round trip = %v, %v", back, err)
	}
	for _, bad := range []string{"", s[:63], s + "0", strings.ToUpper(s), "g" + s[1:], " " + s[1:], s[:62] + "\x00\x00"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) succeeded", bad)
		}
	}
}

func TestObjectName(t *testing.T) {
	id := Sum([]byte("x"))
	name := objectName(id)
	h := id.String()
	if name != "chunks/"+h[:2]+"/"+h {
		t.Fatalf("objectName = %q", name)
	}
	if got, ok := parseObjectName(name); !ok || got != id {
		t.Fatalf("parseObjectName(%q) = %s, %v", name, got, ok)
	}
	wrongDir := "zz"
	if h[:2] == wrongDir {
		wrongDir = "00"
	}
	for _, bad := range []string{"chunks/" + h, "chunks/" + wrongDir + "/" + h, "chunk/" + h[:2] + "/" + h,
		name + "0", name[:len(name)-1], "chunks/" + h[:2] + "/" + strings.ToUpper(h), "chunks/" + h[:2] + "-" + h} {
		if _, ok := parseObjectName(bad); ok {
			t.Errorf("parseObjectName(%q) accepted", bad)
		}
	}
}

func TestIsZero(t *testing.T) {
	if !IsZero(nil) || !IsZero([]byte{}) {
		t.Fatal("empty data is zero")
	}
	for _, n := range []int{1, 7, 8, 9, 4095, 8 << 10, 8<<10 + 1, 1 << 20} {
		data := make([]byte, n)
		if !IsZero(data) {
			t.Fatalf("IsZero(%d zero bytes) = false", n)
		}
		for _, at := range []int{0, n / 2, n - 1} {
			data[at] = 1
			if IsZero(data) {
				t.Fatalf("IsZero(%d bytes with byte %d set) = true", n, at)
			}
			data[at] = 0
		}
	}
}
