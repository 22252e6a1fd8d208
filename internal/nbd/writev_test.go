//go:build linux

package nbd

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// smallBufferPair returns a connected TCP pair whose server side (the writer)
// has a small send buffer and whose client side has a small receive
// buffer, so that writes wait for the reader.
func smallBufferPair(t *testing.T) (w *net.TCPConn, r *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := &net.Dialer{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		})
		return errors.Join(err, serr)
	}}
	rc, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	wc, err := ln.Accept()
	if err != nil {
		rc.Close()
		t.Fatal(err)
	}
	w, r = wc.(*net.TCPConn), rc.(*net.TCPConn)
	t.Cleanup(func() { w.Close(); r.Close() })
	if err := w.SetWriteBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	return w, r
}

// TestWritevAllSpansBuffers: more than IOV_MAX buffers, zero-length
// ones among them, partial writes that end inside and across buffers: the
// reader gets exactly their concatenation, progress is reported, and the
// buffers' bytes are untouched.
func TestWritevAllSpansBuffers(t *testing.T) {
	w, r := smallBufferPair(t)
	sc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var bufs [][]byte
	var want []byte
	for i := range 3000 {
		n := rng.IntN(700)
		if i%7 == 0 {
			n = 0
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	// Copies of the headers, as send's iov is of the replies' buffers.
	orig := make([][]byte, len(bufs))
	copy(orig, bufs)
	got := make(chan []byte, 1)
	go func() {
		var out bytes.Buffer
		p := make([]byte, 4<<10)
		for {
			time.Sleep(200 * time.Microsecond)
			n, err := r.Read(p[:1+rng.IntN(len(p)-1)])
			out.Write(p[:n])
			if err != nil {
				got <- out.Bytes()
				return
			}
		}
	}()
	var progress atomic.Int32
	var iovecs []syscall.Iovec
	if err := writevAll(sc, w, bufs, &iovecs, func() { progress.Add(1) }); err != nil {
		t.Fatal(err)
	}
	w.CloseWrite()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("reader got %d bytes, want %d (equal prefix? %v)", len(b), len(want), bytes.HasPrefix(want, b))
	}
	if progress.Load() == 0 {
		t.Fatal("no progress reported though the socket was full")
	}
	for i := range orig {
		if len(orig[i]) > 0 && cap(orig[i]) == 0 {
			t.Fatalf("buffer %d lost", i)
		}
	}
	for _, v := range iovecs[:cap(iovecs)] {
		if v.Base != nil {
			t.Fatal("iovecs keep a pointer to a buffer")
		}
	}
}

// writeToSilentPeer starts a writevAll of 8 MiB to a peer that reads
// nothing, after setup(w), and returns its result's channel.
func writeToSilentPeer(t *testing.T, setup func(w *net.TCPConn)) (*net.TCPConn, <-chan error) {
	t.Helper()
	w, _ := smallBufferPair(t)
	sc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	setup(w)
	done := make(chan error, 1)
	go func() {
		var iovecs []syscall.Iovec
		done <- writevAll(sc, w, [][]byte{make([]byte, 8<<20)}, &iovecs, func() {})
	}()
	return w, done
}

// TestWritevAllCloseWhileWaiting: closing the socket (the watchdog,
// Disconnect) while writevAll waits for the peer ends it at once with
// net.ErrClosed, as the send path expects.
func TestWritevAllCloseWhileWaiting(t *testing.T) {
	w, done := writeToSilentPeer(t, func(*net.TCPConn) {})
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("writevAll returned %v while the peer reads nothing", err)
	default:
	}
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("writevAll after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writevAll still waits 5 s after Close")
	}
}

// TestWritevAllDeadline: a write deadline (shutdown's drainTimeout)
// ends a waiting writevAll with os.ErrDeadlineExceeded, as it ended
// net.Buffers.WriteTo.
func TestWritevAllDeadline(t *testing.T) {
	_, done := writeToSilentPeer(t, func(w *net.TCPConn) { w.SetWriteDeadline(time.Now().Add(300 * time.Millisecond)) })
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("writevAll past its deadline: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writevAll ignores the write deadline")
	}
}
