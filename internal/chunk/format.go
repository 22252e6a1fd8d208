// Package chunk stores content-addressed, compressed chunks of disk data on a
// blob.Backend.
//
// A chunk is named by the BLAKE3-256 hash of its plaintext (its ID), so equal
// chunks are stored once, and reading one back verifies it end to end: Get
// returns the plaintext whose hash is the ID, or an error wrapping ErrCorrupt
// — never wrong bytes.
//
// # Object names
//
// The chunk with ID h (64 lowercase hex digits) is the object
// "chunks/<h[0:2]>/<h>", fanning out over 256 directories.
//
// # Object format, version 1
//
// All integers are little-endian.
//
//	offset 0       4     5     6             10            14          14+P      18+P
//	       +-------+-----+-----+-------------+-------------+----- ... -----+---------+
//	       | "SSCK"| ver | cmp |  plain len  | payload len |    payload    |  CRC32C |
//	       |       | =1  |     | L (uint32)  | P (uint32)  |   (P bytes)   | (uint32)|
//	       +-------+-----+-----+-------------+-------------+----- ... -----+---------+
//	       |<---------------- header, 14 bytes ------------>|
//	       |<----------------- covered by the CRC-32C (Castagnoli) ------->|
//
// The fields are:
//
//   - magic: the 4 bytes "SSCK".
//   - ver: the format version, 1.
//   - cmp: how the payload is compressed, a Compression ID (0 = none,
//     1 = zstd, 2 = S2; IDs are never reused).
//   - plain len: L, the plaintext length, at most MaxSize.
//   - payload len: P, the stored payload length; the object is 18+P bytes.
//   - CRC32C: CRC-32C (Castagnoli polynomial) of the header and the payload.
//
// The checksum guards the envelope: it catches damage cheaply before any
// decompression and lets a scrubber check objects without decoding them. The
// end-to-end guarantee comes from the ID, a cryptographic hash of the
// plaintext, which Get always verifies. CRC-32C is hardware accelerated (many
// GB/s) and, at these object sizes, detects every error of up to 3 bits and
// every burst of up to 32 bits.
//
// Permanent across versions: every version begins with the magic and the
// version byte and ends with a CRC-32C of all preceding bytes. A decoder thus
// tells damage (ErrCorrupt) from an intact object written in an unknown
// version or with an unknown compression (ErrUnsupported).
//
// A payload is stored compressed only when that makes it strictly smaller
// than the plaintext; otherwise it is stored raw (cmp = 0, P = L).
//
// # Compressions
//
//   - zstd (1): one zstd frame (github.com/klauspost/compress/zstd, written
//     at its fastest level, without zstd's own checksum).
//   - S2 (2): one S2 block (github.com/klauspost/compress/s2): its varint
//     plaintext length, then the block. S2 is the Snappy-derived format of
//     the same library.
//
// A Store writes new chunks with the compression it was opened with and
// reads every compression, so a store may hold objects of several. S2 is
// the default: on the benchmark image it compresses at twice zstd's speed
// (log text: 755 against 376 MB/s per core) and stores about 12% more
// (ratio 1.82 against 2.07 over the image's data), which is what makes a
// full snapshot of a CPU-bound host 1.7x faster; zstd is for stores where
// space matters more than time (docs/benchmarks.md, "Sixth session").
package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Compression identifies how a payload is stored. IDs are permanent: IDs are
// never reused, even for a compression that is no longer written.
type Compression uint8

// Compression IDs.
const (
	CompressionNone Compression = 0 // payload is the plaintext
	CompressionZstd Compression = 1 // payload is one zstd frame
	CompressionS2   Compression = 2 // payload is one S2 block
)

// DefaultCompression is the compression of new chunks when none is chosen.
const DefaultCompression = CompressionS2

// String is the compression's name, as ParseCompression takes it.
func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionZstd:
		return "zstd"
	case CompressionS2:
		return "s2"
	}
	return fmt.Sprintf("compression-%d", uint8(c))
}

// ParseCompression returns the compression named "s2", "zstd" or "none";
// the empty name is DefaultCompression.
func ParseCompression(name string) (Compression, error) {
	if name == "" {
		return DefaultCompression, nil
	}
	for _, c := range [...]Compression{CompressionS2, CompressionZstd, CompressionNone} {
		if c.String() == name {
			return c, nil
		}
	}
	return 0, fmt.Errorf("chunk: unknown compression %q (want s2, zstd or none)", name)
}

// Format constants.
const (
	Magic       = "SSCK"
	Version     = 1
	HeaderSize  = 14
	TrailerSize = 4
	Overhead    = HeaderSize + TrailerSize
	// MaxSize is the largest chunk plaintext.
	MaxSize = 4 << 20
)

var (
	// ErrCorrupt reports a stored chunk that is damaged or is not the chunk
	// its name claims.
	ErrCorrupt = errors.New("chunk: corrupt")
	// ErrUnsupported reports an intact object in a format version or
	// compression this build does not know.
	ErrUnsupported = errors.New("chunk: unsupported format")
	// ErrTooLarge reports a chunk longer than MaxSize.
	ErrTooLarge = errors.New("chunk: too large")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// codec encodes objects with one compression and decodes objects of every
// compression. Its zstd encoder and decoder are created once and are safe
// for concurrent EncodeAll and DecodeAll.
type codec struct {
	write Compression
	enc   *zstd.Encoder // nil unless write is CompressionZstd
	dec   *zstd.Decoder
}

func newCodec(write Compression) (*codec, error) {
	c := &codec{write: write}
	switch write {
	case CompressionNone, CompressionS2:
	case CompressionZstd:
		enc, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderCRC(false), // the envelope has its own checksum
			zstd.WithWindowSize(MaxSize))
		if err != nil {
			return nil, err
		}
		c.enc = enc
	default:
		return nil, fmt.Errorf("cannot write %v", write)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(MaxSize),
		zstd.WithDecoderMaxWindow(MaxSize),
		zstd.WithDecodeAllCapLimit(true)) // never decode past the declared length
	if err != nil {
		if c.enc != nil {
			c.enc.Close()
		}
		return nil, err
	}
	c.dec = dec
	return c, nil
}

// encode returns the object storing plaintext data (len(data) <= MaxSize).
func (c *codec) encode(data []byte) []byte { return c.encodeInto(nil, data) }

// encodeInto is encode building the object in dst's storage when its
// capacity is large enough (nil dst allocates).
func (c *codec) encodeInto(dst, data []byte) []byte {
	if need := maxEncoded(len(data)); cap(dst) < need {
		dst = make([]byte, 0, need)
	}
	var obj []byte
	cmp := c.write
	switch cmp {
	case CompressionZstd:
		obj = c.enc.EncodeAll(data, dst[:HeaderSize])
	case CompressionS2:
		// dst has room for s2.MaxEncodedLen past the header, so the block
		// is written in place; were the library ever to allocate instead,
		// the block is copied rather than lost.
		room := dst[HeaderSize:cap(dst)]
		enc := s2.Encode(room, data)
		if &enc[0] == &room[0] {
			obj = dst[:HeaderSize+len(enc)]
		} else {
			obj = append(dst[:HeaderSize], enc...)
		}
	default:
		obj = append(dst[:HeaderSize], data...)
	}
	if cmp != CompressionNone && len(obj)-HeaderSize >= len(data) {
		cmp = CompressionNone
		obj = append(obj[:HeaderSize], data...)
	}
	copy(obj, Magic)
	obj[4] = Version
	obj[5] = byte(cmp)
	binary.LittleEndian.PutUint32(obj[6:], uint32(len(data)))
	binary.LittleEndian.PutUint32(obj[10:], uint32(len(obj)-HeaderSize))
	return binary.LittleEndian.AppendUint32(obj, crc32.Checksum(obj, castagnoli))
}

// maxEncoded is the room encodeInto needs for n bytes of plaintext: the
// envelope, and the framing of incompressible data too (zstd: a few bytes
// per 128 KiB block; S2: at most 10 bytes), so that the compressors and the
// raw fallback write into the buffer.
func maxEncoded(n int) int { return Overhead + n + n>>10 + 64 }

// decode checks obj and returns its plaintext, which hashes to id. Errors
// wrap ErrCorrupt or ErrUnsupported. The result may share memory with obj.
func (c *codec) decode(id ID, obj []byte) ([]byte, error) { return c.decodeInto(id, obj, nil) }

// zstdSlack is the spare capacity past the plaintext that lets the zstd
// decoder copy in 16-byte blocks; with less, it takes its bounds-exact
// path (decode and verify of log text: 661 against 797 MB/s). Callers of
// decodeInto do well to give dst this much room too.
const zstdSlack = 16

// decodeInto is decode writing the plaintext into dst's storage when its
// capacity is large enough (the result then shares memory with dst, not
// obj); nil dst allocates.
func (c *codec) decodeInto(id ID, obj, dst []byte) ([]byte, error) {
	if len(obj) < Overhead {
		return nil, corrupt(id, "%d bytes is shorter than the %d-byte envelope", len(obj), Overhead)
	}
	body := obj[:len(obj)-TrailerSize]
	if want, got := binary.LittleEndian.Uint32(obj[len(body):]), crc32.Checksum(body, castagnoli); got != want {
		return nil, corrupt(id, "checksum %08x, stored %08x", got, want)
	}
	if string(obj[:4]) != Magic {
		return nil, corrupt(id, "bad magic %q", obj[:4])
	}
	if v := obj[4]; v != Version {
		return nil, fmt.Errorf("%w: chunk %s: format version %d (this build reads %d)", ErrUnsupported, id, v, Version)
	}
	cmp := Compression(obj[5])
	plainLen := binary.LittleEndian.Uint32(obj[6:])
	payloadLen := binary.LittleEndian.Uint32(obj[10:])
	payload := body[HeaderSize:]
	switch {
	case plainLen > MaxSize:
		return nil, corrupt(id, "plaintext length %d exceeds %d", plainLen, MaxSize)
	case uint64(payloadLen) != uint64(len(payload)):
		return nil, corrupt(id, "payload length %d, object holds %d", payloadLen, len(payload))
	}
	var plain []byte
	switch cmp {
	case CompressionNone:
		if payloadLen != plainLen {
			return nil, corrupt(id, "raw payload of %d bytes, plaintext length %d", payloadLen, plainLen)
		}
		plain = payload
		if cap(dst) >= int(plainLen) {
			plain = append(dst[:0], payload...)
		}
	case CompressionZstd:
		if cap(dst) < int(plainLen) {
			dst = make([]byte, 0, int(plainLen)+zstdSlack)
		}
		var err error
		plain, err = c.dec.DecodeAll(payload, dst[:0])
		if err != nil {
			return nil, corrupt(id, "zstd: %v", err)
		}
		if uint64(len(plain)) != uint64(plainLen) {
			return nil, corrupt(id, "decompressed %d bytes, plaintext length %d", len(plain), plainLen)
		}
	case CompressionS2:
		// The block declares its length: check it before decoding, so a
		// damaged length never sizes an allocation.
		switch n, err := s2.DecodedLen(payload); {
		case err != nil:
			return nil, corrupt(id, "s2: %v", err)
		case uint64(n) != uint64(plainLen):
			return nil, corrupt(id, "S2 block of %d bytes, plaintext length %d", n, plainLen)
		}
		if cap(dst) < int(plainLen) {
			dst = make([]byte, 0, int(plainLen))
		}
		var err error
		if plain, err = s2.Decode(dst[:plainLen], payload); err != nil {
			return nil, corrupt(id, "s2: %v", err)
		}
	default:
		return nil, fmt.Errorf("%w: chunk %s: compression ID %d", ErrUnsupported, id, cmp)
	}
	if got := Sum(plain); got != id {
		return nil, corrupt(id, "plaintext hashes to %s", got)
	}
	return plain, nil
}

func corrupt(id ID, format string, args ...any) error {
	return fmt.Errorf("%w: chunk %s: %s", ErrCorrupt, id, fmt.Sprintf(format, args...))
}
