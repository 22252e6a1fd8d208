package signature

import (
	"encoding/binary"
	"hash"
	"math/bits"
)

// This file implements the SM3 cryptographic hash function as specified in
// GB/T 32905-2016 ("Information security techniques — SM3 cryptographic hash
// algorithm"). It is needed for ACS3-HMAC-SM3 and kept here so the package
// depends on the standard library only.

const (
	sm3Size      = 32 // size of an SM3 checksum in bytes
	sm3BlockSize = 64 // block size of SM3 in bytes
)

// sm3IV is the initial value IV of the specification (section 4.1).
var sm3IV = [8]uint32{
	0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600,
	0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e,
}

// sm3T holds T_j rotated left by j mod 32, precomputed for every round
// (T_j = 0x79cc4519 for 0 <= j <= 15 and 0x7a879d8a for 16 <= j <= 63).
var sm3T = func() (t [64]uint32) {
	for j := range t {
		c := uint32(0x79cc4519)
		if j >= 16 {
			c = 0x7a879d8a
		}
		t[j] = bits.RotateLeft32(c, j%32)
	}
	return t
}()

// sm3Digest is the running state of an SM3 computation; it implements
// hash.Hash.
type sm3Digest struct {
	v   [8]uint32
	buf [sm3BlockSize]byte
	n   int    // bytes buffered in buf
	len uint64 // total message length in bytes
}

// NewSM3 returns a new hash.Hash computing the SM3 checksum (GB/T 32905-2016);
// Size is 32 bytes and BlockSize 64. It is what ACS3-HMAC-SM3 uses, both for
// the payload hash and, through crypto/hmac, for the signature.
func NewSM3() hash.Hash {
	d := new(sm3Digest)
	d.Reset()
	return d
}

func (d *sm3Digest) Reset() {
	d.v = sm3IV
	d.n = 0
	d.len = 0
}

func (d *sm3Digest) Size() int      { return sm3Size }
func (d *sm3Digest) BlockSize() int { return sm3BlockSize }

func (d *sm3Digest) Write(p []byte) (int, error) {
	written := len(p)
	d.len += uint64(written)
	if d.n > 0 {
		c := copy(d.buf[d.n:], p)
		d.n += c
		p = p[c:]
		if d.n < sm3BlockSize {
			return written, nil
		}
		d.compress(d.buf[:])
		d.n = 0
	}
	for len(p) >= sm3BlockSize {
		d.compress(p[:sm3BlockSize])
		p = p[sm3BlockSize:]
	}
	d.n = copy(d.buf[:], p)
	return written, nil
}

// Sum appends the current checksum to b without changing the state.
func (d *sm3Digest) Sum(b []byte) []byte {
	dup := *d
	return dup.checkSum(b)
}

// checkSum pads the message (section 5.2: a 1 bit, zeros, then the 64-bit
// big-endian bit length), processes the final block(s) and appends the
// digest to b. It consumes d.
func (d *sm3Digest) checkSum(b []byte) []byte {
	bitLen := d.len << 3
	var pad [sm3BlockSize + 8]byte
	pad[0] = 0x80
	padLen := 56 - d.n
	if d.n >= 56 {
		padLen += sm3BlockSize
	}
	binary.BigEndian.PutUint64(pad[padLen:], bitLen)
	d.Write(pad[:padLen+8])
	if d.n != 0 {
		panic("signature: sm3 padding error")
	}
	for _, w := range d.v {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

func sm3P0(x uint32) uint32 { return x ^ bits.RotateLeft32(x, 9) ^ bits.RotateLeft32(x, 17) }
func sm3P1(x uint32) uint32 { return x ^ bits.RotateLeft32(x, 15) ^ bits.RotateLeft32(x, 23) }

// compress applies the compression function CF (section 5.3) to one
// 64-byte block.
func (d *sm3Digest) compress(block []byte) {
	// Message expansion (5.3.2).
	var w [68]uint32
	for j := 0; j < 16; j++ {
		w[j] = binary.BigEndian.Uint32(block[4*j:])
	}
	for j := 16; j < 68; j++ {
		w[j] = sm3P1(w[j-16]^w[j-9]^bits.RotateLeft32(w[j-3], 15)) ^
			bits.RotateLeft32(w[j-13], 7) ^ w[j-6]
	}

	// Compression (5.3.3); W'_j = W_j xor W_{j+4} is computed inline.
	a, b, c, dd := d.v[0], d.v[1], d.v[2], d.v[3]
	e, f, g, h := d.v[4], d.v[5], d.v[6], d.v[7]
	for j := 0; j < 64; j++ {
		a12 := bits.RotateLeft32(a, 12)
		ss1 := bits.RotateLeft32(a12+e+sm3T[j], 7)
		ss2 := ss1 ^ a12
		var ff, gg uint32
		if j < 16 {
			ff = a ^ b ^ c
			gg = e ^ f ^ g
		} else {
			ff = (a & b) | (a & c) | (b & c)
			gg = (e & f) | (^e & g)
		}
		tt1 := ff + dd + ss2 + (w[j] ^ w[j+4])
		tt2 := gg + h + ss1 + w[j]
		dd = c
		c = bits.RotateLeft32(b, 9)
		b = a
		a = tt1
		h = g
		g = bits.RotateLeft32(f, 19)
		f = e
		e = sm3P0(tt2)
	}
	d.v[0] ^= a
	d.v[1] ^= b
	d.v[2] ^= c
	d.v[3] ^= dd
	d.v[4] ^= e
	d.v[5] ^= f
	d.v[6] ^= g
	d.v[7] ^= h
}
