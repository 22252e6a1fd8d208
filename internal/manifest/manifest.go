// Package manifest is the table of contents of one snapshot: for each
// chunk of the disk that holds data, where its bytes are in the chunk
// store. Manifests are full (not deltas), so any one of them restores its
// snapshot on its own, whatever happened to its parent.
//
// A chunk's content is either one object of the chunk store (a "whole"
// entry: the object's bytes are the chunk's, zeroes past the object's
// end), or a list of pieces: byte ranges of the chunk, each a range of
// some object, the gaps between them zero. Pieces let an incremental
// upload store only the clusters that changed inside a chunk and keep
// pointing at the parent's object for the rest, and let a chunk point at
// a copy of some of its blocks that another chunk's object already holds.
//
// Encoding, version 2 (little endian); version 1 is version 2 with only
// whole entries and no piece count, and is still read:
//
//	+--------+---------+------------+-----------+----------------+
//	| "SSMF" | ver u8  | size u64   | chunk u32 | parent len u16 |
//	+--------+---------+------------+-----------+----------------+
//	| parent snapshot ID | count u64 | count x entry                |
//	+--------------------+-----------+------------------------------+
//	| BLAKE3-256 of everything before (32 B)                        |
//	+---------------------------------------------------------------+
//
//	entry: index u64, pieces u16, then either (pieces = 0) the whole
//	chunk's ID (32 B), or pieces x (off u32, len u32, object off u32,
//	ID 32 B), sorted by off, not overlapping, inside the chunk.
//
// Entries are sorted by index; a chunk without an entry is all zeroes.
package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/snapstack/snapstack/internal/chunk"
)

const (
	magic   = "SSMF"
	version = 2
)

// ErrCorrupt: the encoding is damaged.
var ErrCorrupt = errors.New("manifest: corrupt")

// Piece is a byte range of a chunk: bytes [Off, Off+Len) of the chunk are
// bytes [ObjOff, ObjOff+Len) of object ID (zeroes past the object's end).
type Piece struct {
	Off, Len, ObjOff uint32
	ID               chunk.ID
}

// Manifest maps chunk indices to their content.
type Manifest struct {
	Size      int64  // disk size in bytes
	ChunkSize int64  // bytes per chunk
	Parent    string // snapshot this one was built on, "" when none

	// A chunk index is in at most one of the maps. A split entry has at
	// least one piece and is never a single piece covering the chunk
	// from object offset 0 (that is a whole entry).
	whole map[int64]chunk.ID
	split map[int64][]Piece
}

// New returns an empty manifest.
func New(size, chunkSize int64, parent string) *Manifest {
	return &Manifest{Size: size, ChunkSize: chunkSize, Parent: parent, whole: map[int64]chunk.ID{}, split: map[int64][]Piece{}}
}

// Derive returns a copy of m as the starting point of a child snapshot of
// the given size.
func (m *Manifest) Derive(size int64, parent string) *Manifest {
	c := New(size, m.ChunkSize, parent)
	for k, id := range m.whole {
		switch cl := m.chunkLen(k); {
		case k*m.ChunkSize >= size:
		case cl < m.ChunkSize && cl < c.chunkLen(k):
			// The old short last chunk of a grown disk: its bytes past
			// the old end are zeroes, whatever the object holds there.
			c.split[k] = []Piece{{Off: 0, Len: uint32(cl), ID: id}}
		default:
			c.whole[k] = id
		}
	}
	for k, ps := range m.split {
		if k*m.ChunkSize < size {
			c.split[k] = slices.Clone(ps)
		}
	}
	return c
}

// chunkLen is the length of chunk k (the last one may be short).
func (m *Manifest) chunkLen(k int64) int64 {
	return max(0, min(m.ChunkSize, m.Size-k*m.ChunkSize))
}

// Set records object id as chunk k's whole content.
func (m *Manifest) Set(k int64, id chunk.ID) {
	delete(m.split, k)
	m.whole[k] = id
}

// Clear records chunk k as all zeroes.
func (m *Manifest) Clear(k int64) {
	delete(m.whole, k)
	delete(m.split, k)
}

// Whole returns the object holding chunk k whole; ok is false for a zero
// chunk or a chunk made of pieces.
func (m *Manifest) Whole(k int64) (chunk.ID, bool) {
	id, ok := m.whole[k]
	return id, ok
}

// Pieces appends chunk k's pieces to buf (a whole chunk is one piece; a
// zero chunk none) and returns it.
func (m *Manifest) Pieces(k int64, buf []Piece) []Piece {
	if id, ok := m.whole[k]; ok {
		return append(buf, Piece{Off: 0, Len: uint32(m.chunkLen(k)), ID: id})
	}
	return append(buf, m.split[k]...)
}

// Fragments is the number of pieces of chunk k (0: zeroes, 1: whole).
func (m *Manifest) Fragments(k int64) int {
	if _, ok := m.whole[k]; ok {
		return 1
	}
	return len(m.split[k])
}

// Patch overwrites bytes [off, off+n) of chunk k: with zeroes when zero,
// else with the first n bytes of object id.
func (m *Manifest) Patch(k, off, n int64, id chunk.ID, zero bool) {
	m.patch(k, off, n, id, 0, zero)
}

// PatchFrom overwrites bytes [off, off+n) of chunk k with bytes
// [objOff, objOff+n) of object id.
func (m *Manifest) PatchFrom(k, off, n int64, id chunk.ID, objOff int64) {
	m.patch(k, off, n, id, objOff, false)
}

func (m *Manifest) patch(k, off, n int64, id chunk.ID, objOff int64, zero bool) {
	cl := m.chunkLen(k)
	off, end := max(off, 0), min(off+n, cl)
	if off >= end {
		return
	}
	lo, hi := uint32(off), uint32(end)
	var out []Piece
	for _, p := range m.Pieces(k, nil) {
		pe := p.Off + p.Len
		if pe <= lo || p.Off >= hi {
			out = append(out, p)
			continue
		}
		if p.Off < lo { // the part before the patch
			out = append(out, Piece{Off: p.Off, Len: lo - p.Off, ObjOff: p.ObjOff, ID: p.ID})
		}
		if pe > hi { // the part after
			out = append(out, Piece{Off: hi, Len: pe - hi, ObjOff: p.ObjOff + (hi - p.Off), ID: p.ID})
		}
	}
	if !zero {
		out = append(out, Piece{Off: lo, Len: hi - lo, ObjOff: uint32(objOff), ID: id})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Off < out[b].Off })
	// Join neighbours that continue each other in the same object.
	j := 0
	for i := range out {
		if j > 0 {
			q := &out[j-1]
			if q.ID == out[i].ID && q.Off+q.Len == out[i].Off && q.ObjOff+q.Len == out[i].ObjOff {
				q.Len += out[i].Len
				continue
			}
		}
		out[j] = out[i]
		j++
	}
	out = out[:j]
	m.Clear(k)
	switch {
	case len(out) == 0:
	case len(out) == 1 && out[0].Off == 0 && out[0].ObjOff == 0 && int64(out[0].Len) == cl && cl == m.ChunkSize:
		// Only a full-size chunk becomes whole: the object of a piece
		// covering a short last chunk may be longer than the chunk (a
		// copy of an earlier chunk's start), and a whole entry would
		// take all of it once the disk grows.
		m.whole[k] = out[0].ID
	default:
		m.split[k] = out
	}
}

// Len is the number of chunks holding data.
func (m *Manifest) Len() int { return len(m.whole) + len(m.split) }

// Indices returns the chunks holding data, ascending.
func (m *Manifest) Indices() []int64 {
	out := make([]int64, 0, m.Len())
	for k := range m.whole {
		out = append(out, k)
	}
	for k := range m.split {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// IDs calls fn with every object referenced (with repeats).
func (m *Manifest) IDs(fn func(chunk.ID)) {
	for _, id := range m.whole {
		fn(id)
	}
	for _, ps := range m.split {
		for _, p := range ps {
			fn(p.ID)
		}
	}
}

// Encode serialises m.
func (m *Manifest) Encode() []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, 64+len(m.Parent)+m.Len()*42+len(m.split)*12*4)
	b = append(b, magic...)
	b = append(b, version)
	b = le.AppendUint64(b, uint64(m.Size))
	b = le.AppendUint32(b, uint32(m.ChunkSize))
	b = le.AppendUint16(b, uint16(len(m.Parent)))
	b = append(b, m.Parent...)
	b = le.AppendUint64(b, uint64(m.Len()))
	for _, k := range m.Indices() {
		b = le.AppendUint64(b, uint64(k))
		if id, ok := m.whole[k]; ok {
			b = le.AppendUint16(b, 0)
			b = append(b, id[:]...)
			continue
		}
		ps := m.split[k]
		b = le.AppendUint16(b, uint16(len(ps)))
		for _, p := range ps {
			b = le.AppendUint32(b, p.Off)
			b = le.AppendUint32(b, p.Len)
			b = le.AppendUint32(b, p.ObjOff)
			b = append(b, p.ID[:]...)
		}
	}
	sum := chunk.Sum(b)
	return append(b, sum[:]...)
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
	ver := raw[4]
	if ver != 1 && ver != 2 {
		return nil, fmt.Errorf("manifest version %d: %w", ver, ErrCorrupt)
	}
	le := binary.LittleEndian
	m := New(int64(le.Uint64(raw[5:])), int64(le.Uint32(raw[13:])), "")
	plen := int(le.Uint16(raw[17:]))
	pos := fixed
	if len(body) < pos+plen+8 || m.ChunkSize <= 0 || m.Size < 0 || m.Size > math.MaxInt64-m.ChunkSize {
		return nil, ErrCorrupt
	}
	m.Parent = string(body[pos : pos+plen])
	pos += plen
	n := le.Uint64(body[pos:])
	pos += 8
	if ver == 1 && uint64(len(body)-pos) != n*40 {
		return nil, ErrCorrupt
	}
	last := int64(-1)
	for i := uint64(0); i < n; i++ {
		if len(body)-pos < 8+2 {
			return nil, ErrCorrupt
		}
		k := int64(le.Uint64(body[pos:]))
		if k <= last || k < 0 || k >= (m.Size+m.ChunkSize-1)/m.ChunkSize {
			return nil, ErrCorrupt
		}
		last = k
		pos += 8
		np := 0
		if ver == 2 {
			np = int(le.Uint16(body[pos:]))
			pos += 2
		}
		if np == 0 {
			if len(body)-pos < 32 {
				return nil, ErrCorrupt
			}
			var id chunk.ID
			copy(id[:], body[pos:])
			m.whole[k] = id
			pos += 32
			continue
		}
		if len(body)-pos < np*44 {
			return nil, ErrCorrupt
		}
		ps := make([]Piece, np)
		end := uint32(0)
		for j := range ps {
			p := &ps[j]
			p.Off, p.Len, p.ObjOff = le.Uint32(body[pos:]), le.Uint32(body[pos+4:]), le.Uint32(body[pos+8:])
			copy(p.ID[:], body[pos+12:])
			pos += 44
			if p.Len == 0 || p.Off < end || int64(p.Off)+int64(p.Len) > m.chunkLen(k) {
				return nil, ErrCorrupt
			}
			end = p.Off + p.Len
		}
		m.split[k] = ps
	}
	if pos != len(body) {
		return nil, ErrCorrupt
	}
	return m, nil
}
