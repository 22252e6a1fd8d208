package nbd

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

func fuzzRequest(typ, flags uint16, off uint64, length uint32, payload []byte) []byte {
	return appendRequest(nil, typ, flags, 0xc0ffee, off, length, payload)
}

func fuzzOption(opt uint32, data []byte) []byte {
	b := be.AppendUint64(nil, optMagic)
	b = be.AppendUint32(b, opt)
	b = be.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func fuzzGoData(name string) []byte {
	d := be.AppendUint32(nil, uint32(len(name)))
	d = append(d, name...)
	return be.AppendUint16(d, 0)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// FuzzServerInput feeds arbitrary bytes to a server connection, either in
// transmission (negotiate: the fuzzer's bytes follow a valid
// STRUCTURED_REPLY + SET_META_CONTEXT + GO handshake) or right after the
// greeting (the bytes start with the client flags). The server must not panic and its
// connection goroutine must return once the client closes.
func FuzzServerInput(f *testing.F) {
	flags := be.AppendUint32(nil, flagCFixedNewstyle|flagCNoZeroes)
	f.Add(true, cat(
		fuzzRequest(cmdWrite, cmdFlagFUA, 512, 8, []byte("abcdefgh")),
		fuzzRequest(cmdRead, 0, 0, 4096, nil),
		fuzzRequest(cmdFlush, 0, 0, 0, nil),
		fuzzRequest(cmdTrim, 0, 0, 4096, nil),
		fuzzRequest(cmdWriteZeroes, cmdFlagNoHole, 0, 4096, nil),
		fuzzRequest(cmdDisc, 0, 0, 0, nil)))
	f.Add(true, cat(
		fuzzRequest(cmdRead, 0, 1<<40, 1, nil),
		fuzzRequest(cmdWrite, 0, 0, MaxPayload+1, nil),
		fuzzRequest(99, 0, 0, 0, nil)))
	f.Add(true, fuzzRequest(cmdWrite, 0, 0, maxSanePayload+1, nil))
	f.Add(true, []byte{0x25, 0x60, 0x95, 0x13, 0, 0})
	f.Add(false, cat(flags,
		fuzzOption(optList, nil),
		fuzzOption(optInfo, fuzzGoData("disk")),
		fuzzOption(optGo, fuzzGoData("nope")),
		fuzzOption(optGo, fuzzGoData("ro")),
		fuzzRequest(cmdWrite, 0, 0, 4, []byte("data")),
		fuzzRequest(cmdRead, 0, 0, 512, nil)))
	f.Add(false, cat(flags, fuzzOption(optExportName, []byte("disk")), fuzzRequest(cmdRead, 0, 0, 1, nil)))
	f.Add(false, cat(flags, fuzzOption(optAbort, nil)))
	f.Add(false, cat(flags, fuzzOption(optGo, []byte{0, 0, 0, 200, 1})))
	f.Add(true, cat(
		fuzzRequest(cmdBlockStatus, 0, 0, 4096, nil),
		fuzzRequest(cmdBlockStatus, cmdFlagReqOne, 100, 1<<30, nil),
		fuzzRequest(cmdBlockStatus, 0, 64<<10, 0, nil)))
	f.Add(false, cat(flags,
		fuzzOption(optListMetaContext, metaData("disk")),
		fuzzOption(optSetMetaContext, metaData("disk", "base:allocation")),
		fuzzOption(optStructuredReply, nil),
		fuzzOption(optSetMetaContext, metaData("ro", "base:", "base:allocation")),
		fuzzOption(optGo, fuzzGoData("ro")),
		fuzzRequest(cmdBlockStatus, 0, 0, 4096, nil)))

	f.Fuzz(func(t *testing.T, negotiate bool, data []byte) {
		ex := newMemExports()
		ex.add("disk", newMemDevice(64<<10), false)
		ex.add("ro", newMemDevice(4096), true)
		s := NewServer(ex, nil, Limits{})
		defer s.Close()
		client, server := net.Pipe()
		defer client.Close()
		client.SetDeadline(time.Now().Add(10 * time.Second))
		c, err := s.startConn(server)
		if err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(client)
		if _, err := io.ReadFull(r, make([]byte, 18)); err != nil {
			t.Fatalf("greeting: %v", err)
		}
		if negotiate {
			hs := cat(flags, fuzzOption(optStructuredReply, nil),
				fuzzOption(optSetMetaContext, metaData("disk", metaBaseAllocation)),
				fuzzOption(optGo, fuzzGoData("disk")))
			if _, err := client.Write(hs); err != nil {
				t.Fatalf("handshake: %v", err)
			}
			for acks := 0; acks < 3; {
				var h [optReplyHdrLen]byte
				if _, err := io.ReadFull(r, h[:]); err != nil {
					t.Fatalf("handshake reply: %v", err)
				}
				if _, err := io.CopyN(io.Discard, r, int64(be.Uint32(h[16:]))); err != nil {
					t.Fatalf("handshake reply: %v", err)
				}
				switch be.Uint32(h[12:]) {
				case repAck:
					acks++
				case repInfo, repMetaCtx:
				default:
					t.Fatalf("handshake reply type %#x", be.Uint32(h[12:]))
				}
			}
		}
		drained := make(chan struct{})
		go func() {
			io.Copy(io.Discard, r)
			close(drained)
		}()
		client.Write(data) // fails once the server closes: fine
		client.Close()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Fatal("server connection did not return")
		}
		<-drained
		if o, r := ex.opens.Load(), ex.releases.Load(); o != r {
			t.Fatalf("%d opens, %d releases", o, r)
		}
	})
}
