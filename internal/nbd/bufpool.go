package nbd

import (
	"math/bits"
	"sync"
)

// bufPool recycles request and reply buffers by power-of-two size class
// (4 KiB to MaxPayload plus a header), so that a stream of large requests
// does not allocate, fault in and collect a fresh buffer for each.
type bufPool struct {
	classes [16]sync.Pool // 4 KiB << i
}

const minBufShift = 12

func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minBufShift
}

// size is the memory a buffer of length n from get holds (its size
// class), which budgets count.
func (p *bufPool) size(n int) int {
	c := bufClass(n)
	if c >= len(p.classes) {
		return n
	}
	return 1 << (c + minBufShift)
}

// get returns a buffer of length n (contents undefined).
func (p *bufPool) get(n int) []byte {
	c := bufClass(n)
	if c >= len(p.classes) {
		return make([]byte, n)
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<(c+minBufShift))
}

// put returns a buffer obtained from get; the caller must not use it
// afterwards.
func (p *bufPool) put(b []byte) {
	c := bufClass(cap(b))
	if c >= len(p.classes) || cap(b) != 1<<(c+minBufShift) {
		return
	}
	b = b[:cap(b)]
	p.classes[c].Put(&b)
}
