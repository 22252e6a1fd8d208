// Package manifest is the table of contents of one snapshot: for each
// chunk of the disk that holds data, the ID of its content in the chunk
// store. Manifests are full (not deltas), so any one of them restores its
// snapshot on its own, whatever happened to its parent.
//
// Encoding, version 1 (little endian):
//
//	+--------+---------+------------+-----------+----------------+
//	| "SSMF" | ver u8  | size u64   | chunk u32 | parent len u16 |
//	+--------+---------+------------+-----------+----------------+
//	| parent snapshot ID | count u64 | count x (index u64, id 32 B) |
//	+--------------------+-----------+------------------------------+
//	| BLAKE3-256 of everything before (32 B)                        |
//	+---------------------------------------------------------------+
//
// Entries are sorted by index; a chunk without an entry is all zeroes.
package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/snapstack/snapstack/internal/chunk"
)

const (
	magic   = "SSMF"
	version = 1
)

// ErrCorrupt: the encoding is damaged.
var ErrCorrupt = errors.New("manifest: corrupt")

// Manifest maps chunk indices to chunk IDs.
type Manifest struct {
	Size      int64  // disk size in bytes
	ChunkSize int64  // bytes per chunk
	Parent    string // snapshot this one was built on, "" when none
	entries   map[int64]chunk.ID
}

// New returns an empty manifest.
func New(size, chunkSize int64, parent string) *Manifest {
	return &Manifest{Size: size, ChunkSize: chunkSize, Parent: parent, entries: map[int64]chunk.ID{}}
}

// Derive returns a copy of m as the starting point of a child snapshot of
// the given size.
func (m *Manifest) Derive(size int64, parent string) *Manifest {
	c := New(size, m.ChunkSize, parent)
	for k, id := range m.entries {
		if k*m.ChunkSize < size {
			c.entries[k] = id
		}
	}
	return c
}

// Set records chunk k's content.
func (m *Manifest) Set(k int64, id chunk.ID) { m.entries[k] = id }

// Clear records chunk k as all zeroes.
func (m *Manifest) Clear(k int64) { delete(m.entries, k) }

// Get returns chunk k's ID; ok is false for a zero chunk.
func (m *Manifest) Get(k int64) (chunk.ID, bool) {
	id, ok := m.entries[k]
	return id, ok
}

// Len is the number of chunks holding data.
func (m *Manifest) Len() int { return len(m.entries) }

// Indices returns the chunks holding data, ascending.
func (m *Manifest) Indices() []int64 {
	out := make([]int64, 0, len(m.entries))
	for k := range m.entries {
		out = append(out, k)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// IDs calls fn with every chunk ID referenced (with repeats).
func (m *Manifest) IDs(fn func(chunk.ID)) {
	for _, id := range m.entries {
		fn(id)
	}
}

// Encode serialises m.
func (m *Manifest) Encode() []byte {
	var b bytes.Buffer
	b.WriteString(magic)
	b.WriteByte(version)
	le := binary.LittleEndian
	b.Write(le.AppendUint64(nil, uint64(m.Size)))
	b.Write(le.AppendUint32(nil, uint32(m.ChunkSize)))
	b.Write(le.AppendUint16(nil, uint16(len(m.Parent))))
	b.WriteString(m.Parent)
	b.Write(le.AppendUint64(nil, uint64(len(m.entries))))
	for _, k := range m.Indices() {
		id := m.entries[k]
		b.Write(le.AppendUint64(nil, uint64(k)))
		b.Write(id[:])
	}
	sum := chunk.Sum(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// Decode parses an encoded manifest, verifying its checksum.
func Decode(raw []byte) (*Manifest, error) {
	const fixed = 4 + 1 + 8 + 4 + 2
	if len(raw) < fixed+8+32 || string(raw[:4]) != magic {
		return nil, ErrCorrupt
	}
	body, sum := raw[:len(raw)-32], raw[len(raw)-32:]
	if got := chunk.Sum(body); !bytes.Equal(got[:], sum) {
		return nil, ErrCorrupt
	}
	if raw[4] != version {
		return nil, fmt.Errorf("manifest version %d: %w", raw[4], ErrCorrupt)
	}
	le := binary.LittleEndian
	m := &Manifest{Size: int64(le.Uint64(raw[5:])), ChunkSize: int64(le.Uint32(raw[13:])), entries: map[int64]chunk.ID{}}
	plen := int(le.Uint16(raw[17:]))
	pos := fixed
	if len(body) < pos+plen+8 {
		return nil, ErrCorrupt
	}
	m.Parent = string(body[pos : pos+plen])
	pos += plen
	n := le.Uint64(body[pos:])
	pos += 8
	if uint64(len(body)-pos) != n*40 || m.ChunkSize <= 0 {
		return nil, ErrCorrupt
	}
	for i := uint64(0); i < n; i++ {
		var id chunk.ID
		k := int64(le.Uint64(body[pos:]))
		copy(id[:], body[pos+8:pos+40])
		m.entries[k] = id
		pos += 40
	}
	return m, nil
}
