package signature

import (
	"bytes"
	"crypto/hmac"
	"encoding/hex"
	"strings"
	"testing"
)

// Vectors of GB/T 32905-2016 appendix A, plus the empty message.
var sm3Vectors = []struct {
	in   string
	want string
}{
	{"", "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"},
	{"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"},
	{strings.Repeat("abcd", 16), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"},
}

func TestSM3Vectors(t *testing.T) {
	for _, v := range sm3Vectors {
		h := NewSM3()
		h.Write([]byte(v.in))
		if got := hex.EncodeToString(h.Sum(nil)); got != v.want {
			t.Errorf("SM3(%q) = %s, want %s", v.in, got, v.want)
		}
	}
}

func TestSM3Interface(t *testing.T) {
	h := NewSM3()
	if h.Size() != 32 || h.BlockSize() != 64 {
		t.Fatalf("Size %d BlockSize %d, want 32 and 64", h.Size(), h.BlockSize())
	}
	h.Write([]byte("ab"))
	first := h.Sum([]byte("prefix"))
	if !bytes.HasPrefix(first, []byte("prefix")) || len(first) != 6+32 {
		t.Errorf("Sum does not append: %x", first)
	}
	h.Write([]byte("c")) // Sum must not have changed the state
	if got := hex.EncodeToString(h.Sum(nil)); got != sm3Vectors[1].want {
		t.Errorf("SM3 after Sum + Write = %s", got)
	}
	h.Reset()
	if got := hex.EncodeToString(h.Sum(nil)); got != sm3Vectors[0].want {
		t.Errorf("SM3 after Reset = %s", got)
	}
}

// TestSM3Chunking checks that any split of the input into writes gives the
// same digest, across the padding boundaries (55, 56, 64 bytes...).
func TestSM3Chunking(t *testing.T) {
	msg := make([]byte, 300)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	for n := 0; n <= len(msg); n += 1 + n/16 {
		one := NewSM3()
		one.Write(msg[:n])
		want := one.Sum(nil)
		for _, step := range []int{1, 3, 55, 63, 64, 65} {
			h := NewSM3()
			for p := msg[:n]; len(p) > 0; {
				k := min(step, len(p))
				h.Write(p[:k])
				p = p[k:]
			}
			if got := h.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("len %d step %d: %x, want %x", n, step, got, want)
			}
		}
	}
}

// TestHMACSM3 checks HMAC-SM3 against vector V5 (protocol.md 6).
func TestHMACSM3(t *testing.T) {
	m := hmac.New(NewSM3, []byte(testSecret))
	m.Write([]byte("ACS3-HMAC-SM3\ncca465ede121e325b981a12e28e1100bb5bbe159c5da3a1c336186ddad5bebd0"))
	if got, want := hex.EncodeToString(m.Sum(nil)), "48683f381d323ec3aa116127f310edd033e683b4cc074e6c13efca70d647c81f"; got != want {
		t.Errorf("HMAC-SM3 = %s, want %s", got, want)
	}
}

func BenchmarkSM3(b *testing.B) {
	buf := make([]byte, 8192)
	b.SetBytes(int64(len(buf)))
	h := NewSM3()
	for b.Loop() {
		h.Reset()
		h.Write(buf)
		h.Sum(nil)
	}
}

// TestSM3PayloadHash checks that the SM3 captures declare the SM3 of their
// (empty) body in x-acs-content-sha256, as protocol.md 4.2 says.
func TestSM3PayloadHash(t *testing.T) {
	for _, name := range []string{"acs3sm3_go_tea_ecs_CreateSnapshot.txt", "acs3sm3_node_tea_ecs_CreateSnapshot.txt"} {
		s := parseCaptureFile(t, name)
		declared := s.req.Header.Get("X-Acs-Content-Sha256")
		if got := s.acs3PayloadHash(); got != declared || got != sm3Vectors[0].want {
			t.Errorf("%s: payload hash %s, declared %s", name, got, declared)
		}
	}
}
