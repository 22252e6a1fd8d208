package nbd

import (
	"bytes"
	"slices"
	"testing"
)

func TestHandshake(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(1<<20), false)
	ex.add("ro", newMemDevice(8192), true)
	_, addr := startServer(t, ex)

	const rwFlags = flagHasFlags | flagSendFlush | flagSendFUA | flagSendTrim | flagSendWriteZeroes | flagCanMultiConn
	goData := func(name string, nreq uint16, infos ...uint16) []byte {
		d := be.AppendUint32(nil, uint32(len(name)))
		d = append(d, name...)
		d = be.AppendUint16(d, nreq)
		for _, i := range infos {
			d = be.AppendUint16(d, i)
		}
		return d
	}
	// expectOpt sends an option and checks the type of its single reply.
	expectOpt := func(t *testing.T, c *testClient, opt uint32, data []byte, want uint32) {
		t.Helper()
		c.sendOpt(opt, data)
		o, typ, _ := c.readOptReply()
		if o != opt || typ != want {
			t.Fatalf("option %d: reply (%d, %#x), want %#x", opt, o, typ, want)
		}
	}
	// inTransmission checks that a READ works.
	inTransmission := func(t *testing.T, c *testClient) {
		t.Helper()
		c.mustRead(0, 4096)
	}

	tests := []struct {
		name string
		run  func(t *testing.T, c *testClient)
	}{
		{"go", func(t *testing.T, c *testClient) {
			size, flags, bs, rep := c.infoGo(optGo, "disk", infoBlockSize)
			if rep != repAck || size != 1<<20 || flags != rwFlags {
				t.Fatalf("GO: rep %#x size %d flags %#x", rep, size, flags)
			}
			if bs != [3]uint32{1, 4096, 32 << 20} {
				t.Fatalf("block sizes %v", bs)
			}
			inTransmission(t, c)
		}},
		{"info then go", func(t *testing.T, c *testClient) {
			size, flags, bs, rep := c.infoGo(optInfo, "disk")
			if rep != repAck || size != 1<<20 || flags != rwFlags || bs[2] != MaxPayload {
				t.Fatalf("INFO: rep %#x size %d flags %#x bs %v", rep, size, flags, bs)
			}
			if _, _, _, rep := c.infoGo(optGo, "disk"); rep != repAck {
				t.Fatalf("GO: rep %#x", rep)
			}
			inTransmission(t, c)
		}},
		{"go read-only", func(t *testing.T, c *testClient) {
			size, flags, _, rep := c.infoGo(optGo, "ro")
			if rep != repAck || size != 8192 || flags != rwFlags|flagReadOnly {
				t.Fatalf("GO: rep %#x size %d flags %#x", rep, size, flags)
			}
		}},
		{"unknown export", func(t *testing.T, c *testClient) {
			for _, opt := range []uint32{optInfo, optGo} {
				if _, _, _, rep := c.infoGo(opt, "nope"); rep != repErrUnknown {
					t.Fatalf("option %d: rep %#x", opt, rep)
				}
			}
			if _, _, _, rep := c.infoGo(optGo, "disk"); rep != repAck {
				t.Fatalf("GO after error: rep %#x", rep)
			}
			inTransmission(t, c)
		}},
		{"list", func(t *testing.T, c *testClient) {
			c.sendOpt(optList, nil)
			var names []string
			for {
				_, typ, data := c.readOptReply()
				if typ == repAck {
					break
				}
				if typ != repServer || int(be.Uint32(data)) != len(data)-4 {
					t.Fatalf("LIST reply %#x %q", typ, data)
				}
				names = append(names, string(data[4:]))
			}
			slices.Sort(names)
			if !slices.Equal(names, []string{"disk", "ro"}) {
				t.Fatalf("LIST: %q", names)
			}
		}},
		{"list with data", func(t *testing.T, c *testClient) {
			expectOpt(t, c, optList, []byte("x"), repErrInvalid)
		}},
		{"abort", func(t *testing.T, c *testClient) {
			expectOpt(t, c, optAbort, nil, repAck)
			if !isClosed(c.nc, c.r) {
				t.Fatal("connection still open after ABORT")
			}
		}},
		{"unknown options", func(t *testing.T, c *testClient) {
			for _, opt := range []uint32{4, 5, 11, 99, 1 << 31} {
				expectOpt(t, c, opt, []byte("data"), repErrUnsup)
			}
			c.infoGo(optGo, "disk")
			inTransmission(t, c)
		}},
		{"structured reply", func(t *testing.T, c *testClient) {
			expectOpt(t, c, optStructuredReply, []byte{0}, repErrInvalid)
			expectOpt(t, c, optStructuredReply, nil, repAck)
			c.structured = true
			c.infoGo(optGo, "disk")
			inTransmission(t, c)
		}},
		{"malformed go", func(t *testing.T, c *testClient) {
			bad := [][]byte{
				{0, 0, 0},
				{0, 0, 0, 9, 'd', 0, 0},                            // name longer than the data
				append(goData("disk", 2, infoExport), 0),           // odd info list
				goData("disk", 1),                                  // missing info request
				goData("disk", 0, infoBlockSize),                   // extra info request
				goData(string(bytes.Repeat([]byte("n"), 5000)), 0), // name too long
			}
			for _, d := range bad {
				expectOpt(t, c, optGo, d, repErrInvalid)
			}
			c.infoGo(optGo, "disk")
			inTransmission(t, c)
		}},
		{"oversized option", func(t *testing.T, c *testClient) {
			expectOpt(t, c, 99, make([]byte, maxOptionLen+1), repErrTooBig)
			if _, _, _, rep := c.infoGo(optGo, "disk"); rep != repAck {
				t.Fatalf("GO after TOO_BIG: rep %#x", rep)
			}
			inTransmission(t, c)
		}},
		{"export name", func(t *testing.T, c *testClient) {
			c.sendOpt(optExportName, []byte("disk"))
			var b [10]byte // NO_ZEROES negotiated
			c.readFull(b[:])
			if be.Uint64(b[:]) != 1<<20 || be.Uint16(b[8:]) != rwFlags {
				t.Fatalf("EXPORT_NAME reply %x", b)
			}
			inTransmission(t, c)
		}},
		{"export name unknown", func(t *testing.T, c *testClient) {
			c.sendOpt(optExportName, []byte("nope"))
			if !isClosed(c.nc, c.r) {
				t.Fatal("connection open after unknown EXPORT_NAME")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, dial(t, addr)) })
	}
}

func TestHandshakeClientFlags(t *testing.T) {
	ex := newMemExports()
	ex.add("disk", newMemDevice(4096), false)
	_, addr := startServer(t, ex)

	t.Run("zeroes", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.write(be.AppendUint32(nil, flagCFixedNewstyle))
		c.sendOpt(optExportName, []byte("disk"))
		b := make([]byte, 134)
		c.readFull(b)
		if be.Uint64(b) != 4096 || !bytes.Equal(b[10:], make([]byte, 124)) {
			t.Fatalf("EXPORT_NAME reply %x", b)
		}
		c.mustRead(0, 512)
	})
	t.Run("unknown flag", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.write(be.AppendUint32(nil, flagCFixedNewstyle|1<<7))
		if !isClosed(c.nc, c.r) {
			t.Fatal("connection open after unknown client flag")
		}
	})
	t.Run("bad option magic", func(t *testing.T) {
		c := dial(t, addr)
		c.write(make([]byte, 16))
		if !isClosed(c.nc, c.r) {
			t.Fatal("connection open after bad option magic")
		}
	})
}
