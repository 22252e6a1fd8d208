package chunk

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// Micro-benchmarks of the per-chunk work of an upload (zero check, BLAKE3,
// zstd, envelope) and of a restore (envelope check, zstd decode, BLAKE3
// verify), on inputs shaped like the benchmark workload of bench/:
// log-like text (compresses about 4x), random bytes (incompressible) and
// explicit zeroes. b.SetBytes is the plaintext, so MB/s is per core of
// plaintext.

// logText returns n bytes of access-, syslog- and JSON-like lines with
// varying timestamps, addresses, ids and numbers.
func logText(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	paths := []string{"/api/v1/items", "/static/app.js", "/login", "/api/v1/orders", "/healthz", "/img/logo.png"}
	agents := []string{"Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "Go-http-client/1.1", "kube-probe/1.29"}
	var b strings.Builder
	t := int64(1795500000)
	for b.Len() < n {
		t += r.Int64N(3)
		ip := fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256))
		switch r.IntN(3) {
		case 0:
			fmt.Fprintf(&b, "%s - - [%d] \"GET %s/%d HTTP/1.1\" %d %d \"-\" \"%s\"\n", ip, t, paths[r.IntN(len(paths))],
				r.IntN(100000), []int{200, 200, 200, 304, 404, 500}[r.IntN(6)], r.IntN(60000), agents[r.IntN(len(agents))])
		case 1:
			fmt.Fprintf(&b, "%d host-%02d sshd[%d]: Accepted publickey for user%d from %s port %d ssh2\n", t, r.IntN(32),
				r.IntN(65536), r.IntN(500), ip, 1024+r.IntN(60000))
		default:
			fmt.Fprintf(&b, "{\"ts\":%d,\"level\":\"info\",\"req\":\"%016x\",\"ip\":\"%s\",\"ms\":%d,\"bytes\":%d}\n", t,
				r.Uint64(), ip, r.IntN(2000), r.IntN(1<<20))
		}
	}
	return []byte(b.String()[:n])
}

func workloadInputs() []struct {
	name string
	data []byte
} {
	return []struct {
		name string
		data []byte
	}{{"logtext", logText(1, 1<<20)}, {"random", random(1, 1<<20)}, {"zeroes", make([]byte, 1<<20)}}
}

func BenchmarkChunkHash(b *testing.B) {
	for _, n := range []int{4 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			data := random(2, n)
			b.SetBytes(int64(n))
			for b.Loop() {
				Sum(data)
			}
		})
	}
}

// BenchmarkChunkHashCompress is what an upload does to each 1 MiB chunk
// before the write: zero check, ID, compressed envelope.
func BenchmarkChunkHashCompress(b *testing.B) {
	for _, write := range []Compression{CompressionS2, CompressionZstd} {
		c := testCodec(b, write)
		for _, in := range workloadInputs() {
			b.Run(write.String()+"/"+in.name, func(b *testing.B) {
				b.SetBytes(int64(len(in.data)))
				b.ReportAllocs()
				var stored int
				for b.Loop() {
					if IsZero(in.data) {
						continue
					}
					Sum(in.data)
					stored = len(c.encode(in.data))
				}
				if stored > 0 {
					b.ReportMetric(float64(len(in.data))/float64(stored), "ratio")
				}
			})
		}
	}
}

// BenchmarkChunkHashCompressParallel runs the same on every P (the upload
// uses two workers): MB/s is for the whole process.
func BenchmarkChunkHashCompressParallel(b *testing.B) {
	data := logText(3, 1<<20)
	for _, write := range []Compression{CompressionS2, CompressionZstd} {
		c := testCodec(b, write)
		b.Run(write.String(), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					Sum(data)
					c.encode(data)
				}
			})
		})
	}
}

// BenchmarkChunkDecodeVerify is what a restore does to each stored chunk:
// CRC-32C, decompression, BLAKE3 of the plaintext against the ID.
func BenchmarkChunkDecodeVerify(b *testing.B) {
	for _, write := range []Compression{CompressionS2, CompressionZstd} {
		c := testCodec(b, write)
		for _, in := range workloadInputs()[:2] {
			b.Run(write.String()+"/"+in.name, func(b *testing.B) {
				id, obj := Sum(in.data), c.encode(in.data)
				b.SetBytes(int64(len(in.data)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := c.decode(id, obj); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
