package chunk

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"lukechampine.com/blake3"
)

// ID identifies a chunk: the BLAKE3-256 hash of its plaintext.
type ID [32]byte

// Sum returns the ID of the chunk with plaintext data.
func Sum(data []byte) ID {
	return blake3.Sum256(data)
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
