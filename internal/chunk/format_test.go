package chunk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// reseal recomputes the checksum of obj in place, so that tests can reach the
// checks behind it.
func reseal(obj []byte) []byte {
	body := obj[:len(obj)-TrailerSize]
	binary.LittleEndian.PutUint32(obj[len(body):], crc32.Checksum(body, castagnoli))
	return obj
}

// writeCompressions are the compressions a Store can write.
var writeCompressions = []Compression{CompressionS2, CompressionZstd, CompressionNone}

func testCodec(t testing.TB, write Compression) *codec {
	t.Helper()
	c, err := newCodec(write)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRawFallback(t *testing.T) {
	for _, write := range writeCompressions {
		t.Run(write.String(), func(t *testing.T) {
			c := testCodec(t, write)
			data := random(7, 1<<20)
			obj := c.encode(data)
			if Compression(obj[5]) != CompressionNone || len(obj) != len(data)+Overhead {
				t.Fatalf("random data stored with compression %d in %d bytes; want raw in %d", obj[5], len(obj), len(data)+Overhead)
			}
			if !bytes.Equal(obj[HeaderSize:len(obj)-TrailerSize], data) {
				t.Fatal("raw payload differs from the plaintext")
			}
			data = compressible(7, 1<<20)
			obj = c.encode(data)
			if write == CompressionNone {
				if Compression(obj[5]) != CompressionNone || !bytes.Equal(obj[HeaderSize:len(obj)-TrailerSize], data) {
					t.Fatalf("compression none stored compressible data with compression %d in %d bytes", obj[5], len(obj))
				}
				return
			}
			if Compression(obj[5]) != write || len(obj) > 1<<19 {
				t.Fatalf("compressible data stored with compression %d in %d bytes", obj[5], len(obj))
			}
		})
	}
}

// TestEncodeEverySize round-trips every length around the compressors'
// block and literal boundaries: the S2 block is written in place, so the
// buffer encodeInto sizes must hold its worst case.
func TestEncodeEverySize(t *testing.T) {
	for _, write := range writeCompressions {
		c := testCodec(t, write)
		for _, n := range []int{0, 1, 2, 16, 17, 60, 61, 255, 256, 4095, 4096, 65535, 65536, 65537, 1<<20 - 1, 1 << 20, MaxSize} {
			for _, data := range [][]byte{random(uint64(n), n), compressible(uint64(n), n)} {
				obj := c.encodeInto(nil, data)
				if len(obj) > maxEncoded(len(data)) {
					t.Fatalf("%v, %d bytes: object of %d bytes, more than maxEncoded %d", write, n, len(obj), maxEncoded(len(data)))
				}
				got, err := c.decode(Sum(data), obj)
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%v, %d bytes: decode = %d bytes, %v", write, n, len(got), err)
				}
			}
		}
	}
}

func TestParseCompression(t *testing.T) {
	for name, want := range map[string]Compression{"": DefaultCompression, "s2": CompressionS2, "zstd": CompressionZstd, "none": CompressionNone} {
		if got, err := ParseCompression(name); err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %v, %v; want %v", name, got, err, want)
		}
		if name != "" && want.String() != name {
			t.Errorf("%v.String() = %q", want, want.String())
		}
	}
	for _, name := range []string{"lz4", "S2", "gzip"} {
		if _, err := ParseCompression(name); err == nil || !strings.Contains(err.Error(), "want s2, zstd or none") {
			t.Errorf("ParseCompression(%q) = %v; want an error naming the choices", name, err)
		}
	}
	if _, err := NewStore(nil, Compression(9)); err == nil {
		t.Error("NewStore accepted compression 9")
	}
}

// TestBitFlips flips single bits through a Faulty backend: every bit of small
// objects, and header, trailer and sampled payload bits of 1 MiB ones.
func TestBitFlips(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		write Compression
		data  []byte
	}{
		{"compressible-4KiB-s2", CompressionS2, compressible(1, 4<<10)},
		{"compressible-4KiB-zstd", CompressionZstd, compressible(1, 4<<10)},
		{"random-4KiB", DefaultCompression, random(1, 4<<10)},
		{"empty", DefaultCompression, nil},
		{"compressible-1MiB-s2", CompressionS2, compressible(2, 1<<20)},
		{"compressible-1MiB-zstd", CompressionZstd, compressible(2, 1<<20)},
		{"random-1MiB", DefaultCompression, random(2, 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := newTestStoreWith(t, tc.write)
			id, _, err := s.Put(ctx, tc.data)
			if err != nil {
				t.Fatal(err)
			}
			orig, err := f.Inner().Get(ctx, objectName(id))
			if err != nil {
				t.Fatal(err)
			}
			var bits []int
			for bit := range len(orig) * 8 {
				byteAt := bit / 8
				if len(orig) <= 8<<10 || byteAt < HeaderSize+16 || byteAt >= len(orig)-TrailerSize-16 ||
					bit%(8*1021) == 0 {
					bits = append(bits, bit)
				}
			}
			for _, bit := range bits {
				if err := f.FlipBit(ctx, objectName(id), bit); err != nil {
					t.Fatal(err)
				}
				got, err := s.Get(ctx, id)
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("bit %d (byte %d of %d) flipped: Get = %d bytes, %v; want ErrCorrupt", bit, bit/8, len(orig), len(got), err)
				}
				if err := f.Inner().Put(ctx, objectName(id), orig); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("restored object: %v", err)
			}
			t.Logf("%d bit positions of %d bytes", len(bits), len(orig))
		})
	}
}

func TestTruncatedAndExtended(t *testing.T) {
	for _, tc := range []struct {
		write Compression
		data  []byte
	}{{CompressionS2, compressible(3, 8<<10)}, {CompressionZstd, compressible(3, 8<<10)}, {CompressionS2, random(3, 8<<10)}} {
		c, data := testCodec(t, tc.write), tc.data
		id := Sum(data)
		obj := c.encode(data)
		for n := range len(obj) {
			if _, err := c.decode(id, obj[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated to %d of %d bytes: %v", n, len(obj), err)
			}
		}
		for _, tail := range [][]byte{{0}, []byte("extra bytes")} {
			if _, err := c.decode(id, append(slices.Clone(obj), tail...)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("extended by %d bytes: %v", len(tail), err)
			}
		}
	}
}

func TestUnsupported(t *testing.T) {
	c := testCodec(t, DefaultCompression)
	data := compressible(4, 4<<10)
	id := Sum(data)
	for _, tc := range []struct {
		name   string
		offset int
		value  byte
	}{{"version 0", 4, 0}, {"version 2", 4, 2}, {"version 255", 4, 255}, {"compression 3", 5, 3}, {"compression 255", 5, 255}} {
		obj := c.encode(data)
		obj[tc.offset] = tc.value
		// Without a valid checksum the object is simply damaged...
		if _, err := c.decode(id, obj); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s, stale checksum: %v, want ErrCorrupt", tc.name, err)
		}
		// ...with one, it is intact but from an unknown writer.
		_, err := c.decode(id, reseal(obj))
		if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCorrupt) {
			t.Errorf("%s, valid checksum: %v, want ErrUnsupported only", tc.name, err)
		}
	}
}

// TestInconsistentObjects builds objects with valid checksums whose fields
// contradict each other or the ID.
func TestInconsistentObjects(t *testing.T) {
	c := testCodec(t, CompressionZstd)
	data := compressible(5, 64<<10)
	id := Sum(data)
	zstdFrame := c.enc.EncodeAll(data, nil)
	s2Block := s2.Encode(nil, data)
	s2Bomb := binary.AppendUvarint(nil, 64<<20) // declares 64 MiB
	s2Bomb = append(s2Bomb, s2Block[len(binary.AppendUvarint(nil, uint64(len(data)))):]...)
	bomb := c.enc.EncodeAll(make([]byte, 64<<20), nil) // 64 MiB of zeros in a few KiB
	streamed := streamEncode(t, make([]byte, 8<<20))   // no content size in the frame header
	build := func(cmp Compression, plainLen int, payload []byte) []byte {
		obj := make([]byte, HeaderSize, Overhead+len(payload))
		copy(obj, Magic)
		obj[4], obj[5] = Version, byte(cmp)
		binary.LittleEndian.PutUint32(obj[6:], uint32(plainLen))
		binary.LittleEndian.PutUint32(obj[10:], uint32(len(payload)))
		return reseal(append(append(obj, payload...), 0, 0, 0, 0))
	}
	objects := map[string][]byte{
		"raw length mismatch":      build(CompressionNone, len(data)-1, data),
		"raw longer than MaxSize":  build(CompressionNone, MaxSize+1, make([]byte, MaxSize+1)),
		"zstd garbage":             build(CompressionZstd, len(data), random(5, 1000)),
		"zstd short plain length":  build(CompressionZstd, len(data)-1, zstdFrame),
		"zstd long plain length":   build(CompressionZstd, len(data)+1, zstdFrame),
		"zstd truncated frame":     build(CompressionZstd, len(data), zstdFrame[:len(zstdFrame)/2]),
		"zstd empty payload":       build(CompressionZstd, len(data), nil),
		"zstd bomb":                build(CompressionZstd, len(data), bomb),
		"zstd streamed bomb":       build(CompressionZstd, len(data), streamed),
		"s2 garbage":               build(CompressionS2, len(data), random(5, 1000)),
		"s2 short plain length":    build(CompressionS2, len(data)-1, s2Block),
		"s2 long plain length":     build(CompressionS2, len(data)+1, s2Block),
		"s2 truncated block":       build(CompressionS2, len(data), s2Block[:len(s2Block)/2]),
		"s2 empty payload":         build(CompressionS2, len(data), nil),
		"s2 declares 64 MiB":       build(CompressionS2, len(data), s2Bomb),
		"s2 other data":            build(CompressionS2, len(data), s2.Encode(nil, compressible(6, 64<<10))),
		"payload length too large": func() []byte { o := c.encode(data); o[10]++; return reseal(o) }(),
		"bad magic":                func() []byte { o := c.encode(data); o[0] = 'X'; return reseal(o) }(),
		"other chunk":              c.encode(compressible(6, 64<<10)),
		"other chunk, raw":         c.encode(random(6, 100)),
	}
	for name, obj := range objects {
		got, err := c.decode(id, obj)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decode = %d bytes, %v; want ErrCorrupt", name, len(got), err)
		}
		t.Logf("%s: %v", name, err)
	}
}

func streamEncode(t *testing.T, data []byte) []byte {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestWrongID stores a valid chunk under another chunk's name.
func TestWrongID(t *testing.T) {
	ctx := context.Background()
	s, f := newTestStore(t)
	a, _, err := s.Put(ctx, compressible(8, 32<<10))
	if err != nil {
		t.Fatal(err)
	}
	b := Sum([]byte("chunk b"))
	obj, err := f.Inner().Get(ctx, objectName(a))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Inner().Put(ctx, objectName(b), obj); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, b)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a chunk stored under the wrong ID = %d bytes, %v; want ErrCorrupt", len(got), err)
	}
	if want := fmt.Sprint(b); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v does not name the chunk", err)
	}
}
