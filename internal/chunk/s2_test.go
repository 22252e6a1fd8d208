package chunk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/s2"
)

// encodeInto with an aligned buffer of exactly maxEncoded capacity must build
// the object in that buffer (no reallocation by s2.Encode), for every size
// class, compressible or not.
func TestS2EncodeInPlace(t *testing.T) {
	c := testCodec(t, CompressionS2)
	for _, n := range []int{0, 1, 16, 17, 59, 60, 61, 255, 256, 511, 512, 4095, 4096, 16383, 16384, 65535, 65536, 1<<16 + 1, 1<<20 - 1, 1 << 20, 1<<24 - 1, MaxSize} {
		if n > MaxSize {
			continue
		}
		for _, data := range [][]byte{random(uint64(n), n), compressible(uint64(n), n)} {
			buf := alignedBuffer(maxEncoded(n))
			if s2max := s2.MaxEncodedLen(n); cap(buf)-HeaderSize < s2max+TrailerSize {
				t.Fatalf("%d: room %d < s2 max %d", n, cap(buf)-HeaderSize, s2max)
			}
			obj := c.encodeInto(buf, data)
			if &obj[0] != &buf[:1][0] {
				t.Fatalf("%d bytes: object not built in place", n)
			}
			got, err := c.decode(Sum(data), obj)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%d bytes: %v", n, err)
			}
		}
	}
}

// s2Object wraps an arbitrary S2 payload in a valid envelope.
func s2Object(plainLen int, payload []byte) []byte {
	obj := make([]byte, HeaderSize, HeaderSize+len(payload)+TrailerSize)
	copy(obj, Magic)
	obj[4] = Version
	obj[5] = byte(CompressionS2)
	binary.LittleEndian.PutUint32(obj[6:], uint32(plainLen))
	binary.LittleEndian.PutUint32(obj[10:], uint32(len(payload)))
	obj = append(obj, payload...)
	return reseal(append(obj, 0, 0, 0, 0))
}

// Crafted S2 payloads: ErrCorrupt, no panic, no write past plainLen in dst.
func TestS2CraftedDecode(t *testing.T) {
	c := testCodec(t, CompressionS2)
	data := compressible(3, 5000)
	id := Sum(data)
	good := s2.Encode(nil, data)
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	cases := map[string]struct {
		plain   int
		payload []byte
	}{
		"empty payload":         {0, nil},
		"len only, plain 0":     {0, uv(0)},
		"declares more":         {len(data), append(uv(uint64(len(data))), good[len(uv(uint64(len(data)))):len(good)-5]...)},
		"huge varint":           {MaxSize, uv(0xffffffff)},
		"varint > MaxSize":      {MaxSize, uv(MaxSize + 1)},
		"6-byte varint":         {1, []byte{0x81, 0x80, 0x80, 0x80, 0x80, 0x00}},
		"copy before start":     {8, append(uv(8), 0x01|(4<<2), 0x10)},                // copy1 offset 16 at d=0
		"literal overruns src":  {8, append(uv(8), 60<<2, 0xff, 'a')},                 // literal of 256, 1 byte present
		"literal overruns dst":  {4, append(uv(4), 7<<2, 1, 2, 3, 4, 5, 6, 7, 8)},     // 8-byte literal into 4
		"repeat with no offset": {8, append(uv(8), 0x01, 0x00)},                       // S2 repeat at start
		"trailing garbage":      {len(data), append(append([]byte{}, good...), 0, 0)}, //
		"good, wrong plainLen":  {len(data) - 1, good},
	}
	for name, tc := range cases {
		for _, dstCap := range []int{-1, 0, tc.plain, tc.plain + 100, MaxSize} {
			var dst []byte
			if dstCap >= 0 {
				dst = make([]byte, 0, dstCap)
				dst = dst[:cap(dst)]
				for i := range dst {
					dst[i] = 0xAA
				}
				dst = dst[:0]
			}
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s, dst cap %d: panic %v", name, dstCap, r)
					}
				}()
				_, err := c.decodeInto(id, s2Object(tc.plain, tc.payload), dst)
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s, dst cap %d: err %v, want ErrCorrupt", name, dstCap, err)
				}
				if dstCap > tc.plain {
					full := dst[:dstCap]
					for i := tc.plain; i < dstCap; i++ {
						if full[i] != 0xAA {
							t.Errorf("%s, dst cap %d: byte %d past plainLen written", name, dstCap, i)
							break
						}
					}
				}
			}()
		}
	}
	// And the genuine object decodes into every dst shape.
	for _, dstCap := range []int{-1, 0, len(data) - 1, len(data), len(data) + 1} {
		var dst []byte
		if dstCap >= 0 {
			dst = make([]byte, 0, dstCap)
		}
		got, err := c.decodeInto(id, s2Object(len(data), good), dst)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("dst cap %d: %v", dstCap, err)
		}
	}
}
