package chunk

import (
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary objects and IDs to the decoder: it must never
// panic, must fail with ErrCorrupt or ErrUnsupported, and must never return
// plaintext whose hash differs from the ID. With reseal set the checksum is
// recomputed, so the fuzzer also explores the checks behind it and the S2
// and zstd decoders.
func FuzzDecode(f *testing.F) {
	c, zc := testCodec(f, CompressionS2), testCodec(f, CompressionZstd)
	for i, data := range [][]byte{nil, {0}, []byte("hello"), compressible(1, 5000), random(1, 300), make([]byte, 4096), compressible(2, 9000)} {
		id := Sum(data)
		obj := c.encode(data)
		if i%2 == 1 {
			obj = zc.encode(data)
		}
		f.Add(obj, id[:], false)
		f.Add(obj, id[:], true)
		if len(obj) > 20 {
			damaged := append([]byte(nil), obj...)
			damaged[HeaderSize+i%(len(obj)-Overhead+1)] ^= 0x10
			f.Add(damaged, id[:], true)
		}
	}
	f.Add([]byte("SSCK"), make([]byte, 32), true)
	f.Fuzz(func(t *testing.T, obj, idBytes []byte, resealed bool) {
		var id ID
		copy(id[:], idBytes)
		if resealed && len(obj) >= Overhead {
			obj = reseal(append([]byte(nil), obj...))
		}
		plain, err := c.decode(id, obj)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("decode error %v wraps neither ErrCorrupt nor ErrUnsupported", err)
			}
			if plain != nil {
				t.Fatal("decode returned data with an error")
			}
			return
		}
		if Sum(plain) != id {
			t.Fatalf("decoded %d bytes hashing to %s, not to the ID %s", len(plain), Sum(plain), id)
		}
		if len(plain) > MaxSize {
			t.Fatalf("decoded %d bytes, more than MaxSize", len(plain))
		}
	})
}
