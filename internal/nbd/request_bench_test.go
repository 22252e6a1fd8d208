package nbd

import (
	"fmt"
	"testing"
)

// Micro-benchmarks of NBD request handling: a real server on loopback TCP
// in front of an in-memory device, so that the figures are the protocol
// path (parse, budget, goroutine per request, reply framing, socket
// writes) and not a disk. One request at a time measures the round trip;
// 16 in flight (what nbdcopy and fio keep) measures throughput. B/op
// counts the test client's buffers too.

const benchDevSize = 256 << 20

func benchClient(b *testing.B, structured bool) *testClient {
	b.Helper()
	ex := newMemExports()
	ex.add("bench", newMemDevice(benchDevSize), false)
	_, addr := startServer(b, ex)
	c, _, _ := dialGo(b, addr, "bench", structured)
	return c
}

var benchOps = []struct {
	name string
	typ  uint16
	size int
}{
	{"read-4KiB", cmdRead, 4 << 10},
	{"write-4KiB", cmdWrite, 4 << 10},
	{"read-1MiB", cmdRead, 1 << 20},
	{"write-1MiB", cmdWrite, 1 << 20},
}

// BenchmarkNBDRoundTrip sends one request and waits for its reply.
func BenchmarkNBDRoundTrip(b *testing.B) {
	for _, structured := range []bool{false, true} {
		for _, op := range benchOps {
			b.Run(fmt.Sprintf("%s/structured=%v", op.name, structured), func(b *testing.B) {
				c := benchClient(b, structured)
				var payload []byte
				if op.typ == cmdWrite {
					payload = make([]byte, op.size)
				}
				b.SetBytes(int64(op.size))
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					off := uint64(i*op.size) % benchDevSize
					if errno, _ := c.do(op.typ, 0, off, uint32(op.size), payload); errno != 0 {
						b.Fatalf("errno %d", errno)
					}
				}
			})
		}
	}
}

// BenchmarkNBDPipelined keeps 16 requests in flight on one connection,
// with simple replies and with structured replies (what qemu and nbdcopy
// negotiate).
func BenchmarkNBDPipelined(b *testing.B) {
	const depth = 16
	for _, structured := range []bool{false, true} {
		for _, op := range benchOps {
			b.Run(fmt.Sprintf("%s/structured=%v", op.name, structured), func(b *testing.B) {
				c := benchClient(b, structured)
				var payload []byte
				if op.typ == cmdWrite {
					payload = make([]byte, op.size)
				}
				readLen := 0
				if op.typ == cmdRead {
					readLen = op.size
				}
				b.SetBytes(int64(op.size))
				b.ReportAllocs()
				sent, recvd := 0, 0
				for b.Loop() {
					for sent-recvd < depth {
						c.send(op.typ, 0, uint64(sent*op.size)%benchDevSize, uint32(op.size), payload)
						sent++
					}
					// Structured reads carry their offset; base 0 keeps
					// the data of the whole device addressable.
					if _, errno, _ := c.recv(readLen, 0); errno != 0 {
						b.Fatalf("errno %d", errno)
					}
					recvd++
				}
				for ; recvd < sent; recvd++ {
					c.recv(readLen, 0)
				}
			})
		}
	}
}
