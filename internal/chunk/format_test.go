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

	"github.com/klauspost/compress/zstd"
)

// reseal recomputes the checksum of obj in place, so that tests can reach the
// checks behind it.
func reseal(obj []byte) []byte {
	body := obj[:len(obj)-TrailerSize]
	binary.LittleEndian.PutUint32(obj[len(body):], crc32.Checksum(body, castagnoli))
	return obj
}

func testCodec(t testing.TB) *codec {
	t.Helper()
	c, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRawFallback(t *testing.T) {
	c := testCodec(t)
	data := random(7, 1<<20)
	obj := c.encode(data)
	if Compression(obj[5]) != CompressionNone || len(obj) != len(data)+Overhead {
		t.Fatalf("random data stored with compression %d in %d bytes; want raw in %d", obj[5], len(obj), len(data)+Overhead)
	}
	if !bytes.Equal(obj[HeaderSize:len(obj)-TrailerSize], data) {
		t.Fatal("raw payload differs from the plaintext")
	}
	obj = c.encode(compressible(7, 1<<20))
	if Compression(obj[5]) != CompressionZstd || len(obj) > 1<<19 {
		t.Fatalf("compressible data stored with compression %d in %d bytes", obj[5], len(obj))
	}
}

// TestBitFlips flips single bits through a Faulty backend: every bit of small
// objects, and header, trailer and sampled payload bits of 1 MiB ones.
func TestBitFlips(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"compressible-4KiB", compressible(1, 4<<10)},
		{"random-4KiB", random(1, 4<<10)},
		{"empty", nil},
		{"compressible-1MiB", compressible(2, 1<<20)},
		{"random-1MiB", random(2, 1<<20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := newTestStore(t)
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
	c := testCodec(t)
	for _, data := range [][]byte{compressible(3, 8<<10), random(3, 8<<10)} {
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
	c := testCodec(t)
	data := compressible(4, 4<<10)
	id := Sum(data)
	for _, tc := range []struct {
		name   string
		offset int
		value  byte
	}{{"version 0", 4, 0}, {"version 2", 4, 2}, {"version 255", 4, 255}, {"compression 2", 5, 2}, {"compression 255", 5, 255}} {
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
	c := testCodec(t)
	data := compressible(5, 64<<10)
	id := Sum(data)
	zstdFrame := c.enc.EncodeAll(data, nil)
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
