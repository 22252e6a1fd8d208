package chunk

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/bits"
	"strings"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"
)

// ID identifies a chunk: the BLAKE3-256 hash of its plaintext.
type ID [32]byte

// Sum returns the ID of the chunk with plaintext data.
//
// It walks the BLAKE3 tree on the calling goroutine, 16 chunks (the
// widest SIMD batch) at a time. blake3.Sum256 computes the same hash but
// starts a goroutine per 16 KiB of input (64 per 1 MiB chunk): upload and
// restore already hash on every core, so that only added scheduling and
// stack growth to each chunk.
func Sum(data []byte) ID {
	if len(data) <= guts.ChunkSize {
		return blake3.Sum256(data)
	}
	var (
		stack   [64][8]uint32 // at most one subtree root per height
		counter uint64        // chunks pushed; bit i set = stack[i] in use
	)
	push := func(cv [8]uint32, height int) {
		i := height
		for counter&(1<<i) != 0 {
			cv = guts.ChainingValue(guts.ParentNode(stack[i], cv, &guts.IV, 0))
			i++
		}
		stack[i] = cv
		counter += 1 << height
	}
	// Every chunk but the last goes into the stack; the last one (full or
	// not) is the rightmost leaf that the root is built from.
	last := (len(data) - 1) / guts.ChunkSize * guts.ChunkSize
	for off := 0; off < last; {
		// The largest power-of-two subtree of at most guts.MaxSIMD chunks
		// that fits before the last chunk; counter stays a multiple of it.
		n := min((last-off)/guts.ChunkSize, guts.MaxSIMD)
		height := bits.Len(uint(n)) - 1
		n = 1 << height
		buf := data[off:]
		if cap(buf) < guts.MaxSIMD*guts.ChunkSize {
			var pad [guts.MaxSIMD * guts.ChunkSize]byte
			buf = pad[:copy(pad[:], buf[:n*guts.ChunkSize])]
		}
		var node guts.Node
		if n == 1 {
			node = guts.CompressChunk(buf[:guts.ChunkSize], &guts.IV, counter, 0)
		} else {
			node = guts.CompressBuffer((*[guts.MaxSIMD * guts.ChunkSize]byte)(buf[:guts.MaxSIMD*guts.ChunkSize]), n*guts.ChunkSize, &guts.IV, counter, 0)
		}
		push(guts.ChainingValue(node), height)
		off += n * guts.ChunkSize
	}
	root := guts.CompressChunk(data[last:], &guts.IV, counter, 0)
	for i := bits.TrailingZeros64(counter); i < bits.Len64(counter); i++ {
		if counter&(1<<i) != 0 {
			root = guts.ParentNode(stack[i], guts.ChainingValue(root), &guts.IV, 0)
		}
	}
	root.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(root))
	return ID(out[:32])
}

// String returns the ID as 64 lowercase hex digits.
func (id ID) String() string {
	return hex.EncodeToString(id[:])
}

// MarshalText encodes the ID as String does.
func (id ID) MarshalText() ([]byte, error) {
	return []byte(id.String()), nil
}

// UnmarshalText decodes an ID as ParseID does.
func (id *ID) UnmarshalText(text []byte) error {
	parsed, err := ParseID(string(text))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseID parses the form String returns: exactly 64 lowercase hex digits.
// Upper case is rejected so that every ID has a single spelling (it is part of
// object names).
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return ID{}, fmt.Errorf("chunk: invalid ID %q: want %d hex digits", s, 2*len(id))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ID{}, fmt.Errorf("chunk: invalid ID %q: %q is not a lowercase hex digit", s, c)
		}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("chunk: invalid ID %q: %w", s, err)
	}
	return id, nil
}

// prefix begins the names of all chunk objects.
const prefix = "chunks/"

// objectName returns the blob name of the chunk: "chunks/<2 hex>/<64 hex>".
func objectName(id ID) string {
	h := id.String()
	return prefix + h[:2] + "/" + h
}

// parseObjectName is the inverse of objectName; ok is false for any other
// name.
func parseObjectName(name string) (id ID, ok bool) {
	rest, found := strings.CutPrefix(name, prefix)
	if !found || len(rest) != 3+2*len(id) || rest[2] != '/' || rest[:2] != rest[3:5] {
		return ID{}, false
	}
	id, err := ParseID(rest[3:])
	return id, err == nil
}

// zeros is compared against data a block at a time by IsZero.
var zeros [8 << 10]byte

// IsZero reports whether data is all zero bytes (true for empty data). Disks
// are full of zero chunks; callers record them without storing them.
func IsZero(data []byte) bool {
	for len(data) > 0 {
		n := min(len(data), len(zeros))
		if !bytes.Equal(data[:n], zeros[:n]) {
			return false
		}
		data = data[n:]
	}
	return true
}
