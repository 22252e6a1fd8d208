//go:build !linux

package nbd

import (
	"io"
	"net"
	"syscall"
)

// writevNow writes nothing where writev is not wired up: the reader then
// hands every reply to the writer goroutine.
func writevNow(rc syscall.RawConn, bufs [][]byte, iovecs *[]syscall.Iovec) (int, error) {
	return 0, nil
}

// writevAll writes bufs to w. Progress is not reported where writev is
// not wired up: the reply timeout counts from the start of the write.
func writevAll(rc syscall.RawConn, w io.Writer, bufs [][]byte, iovecs *[]syscall.Iovec, progress func()) error {
	b := net.Buffers(bufs)
	_, err := b.WriteTo(w)
	return err
}
