package signature

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// Micro-benchmarks of signature verification, which runs on every API
// request: Parse then Verify of requests captured from the official SDKs
// (testdata/captures), one per scheme, as the server sees them.

var benchCaptures = []string{
	"rpc1_go_legacy_ecs_CreateSnapshot.txt",
	"acs3_go_tea_ecs_CreateSnapshot.txt",
	"acs3_go_tea_ecs_DescribeSnapshots.txt",
	"acs3sm3_go_tea_ecs_CreateSnapshot.txt",
	"roa1_go_legacy_common_dsw_CreateInstanceSnapshot.txt",
}

func BenchmarkParseVerify(b *testing.B) {
	for _, name := range benchCaptures {
		raw, err := readCapture(name)
		if err != nil {
			b.Fatal(err)
		}
		req, err := parseCapture(raw)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.TrimSuffix(name, ".txt"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, err := Parse(req)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Verify(testSecret); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseVerifyParallel checks the tea SDK's DescribeSnapshots on
// every P: the signature checks per second the machine can do.
func BenchmarkParseVerifyParallel(b *testing.B) {
	raw, err := readCapture("acs3_go_tea_ecs_DescribeSnapshots.txt")
	if err != nil {
		b.Fatal(err)
	}
	req, err := parseCapture(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, err := Parse(req)
			if err != nil {
				b.Error(err)
				return
			}
			if err := s.Verify(testSecret); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSignRPC is the client side of RPC HMAC-SHA1 (the admin client
// and tests sign with it).
func BenchmarkSignRPC(b *testing.B) {
	base := url.Values{"Action": {"CreateSnapshot"}, "Version": {"2014-05-26"}, "RegionId": {"cn-hangzhou"},
		"DiskId": {"d-bp1example0000000000"}, "SnapshotName": {"nightly"}}
	t := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		p := url.Values{}
		for k, v := range base {
			p[k] = v
		}
		SignRPC("POST", p, testAK, testSecret, "0123456789abcdef0123456789abcdef", t)
	}
}

// BenchmarkVerifyMismatch is the cost of rejecting a forged request.
func BenchmarkVerifyMismatch(b *testing.B) {
	raw, err := readCapture("acs3_go_tea_ecs_CreateSnapshot.txt")
	if err != nil {
		b.Fatal(err)
	}
	req, err := parseCapture(raw)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Parse(req)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Verify(wrongSecret); err != ErrMismatch {
			b.Fatal(err)
		}
	}
}
