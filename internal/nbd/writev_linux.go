package nbd

import (
	"io"
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// writevNow writes bufs to rc's socket with one writev that does not wait
// for the socket to take them, and returns the number of bytes written
// (0 when the socket is full or rc is nil).
func writevNow(rc syscall.RawConn, bufs [][]byte, iovecs *[]syscall.Iovec) (int, error) {
	if rc == nil {
		return 0, nil
	}
	return writev(rc, bufs, iovecs, false)
}

// writevAll writes all of bufs to rc's socket (to w if rc is nil), waiting
// for the socket as long as it takes, and calls progress after each
// writev that left bytes for later: the server's watchdog counts a
// client's silence from there (see Server.watch).
func writevAll(rc syscall.RawConn, w io.Writer, bufs [][]byte, iovecs *[]syscall.Iovec, progress func()) error {
	if rc == nil {
		b := net.Buffers(bufs)
		_, err := b.WriteTo(w)
		return err
	}
	for {
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
		if len(bufs) == 0 {
			return nil
		}
		n, err := writev(rc, bufs, iovecs, true)
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF // as net.Buffers: never loop on nothing written
		}
		for n > 0 {
			k := min(n, len(bufs[0]))
			bufs[0] = bufs[0][k:]
			n -= k
			if len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
		}
		if len(bufs) > 0 {
			progress()
		}
	}
}

// writev writes bufs (their first 1024, IOV_MAX) with one writev and
// returns the number of bytes written. If the socket is full, it waits
// until it takes some when wait is set, else returns 0.
func writev(rc syscall.RawConn, bufs [][]byte, iovecs *[]syscall.Iovec, wait bool) (int, error) {
	v := (*iovecs)[:0]
	for _, b := range bufs {
		if len(b) > 0 && len(v) < 1024 { // IOV_MAX
			iov := syscall.Iovec{Base: &b[0]}
			iov.SetLen(len(b))
			v = append(v, iov)
		}
	}
	*iovecs = v
	if len(v) == 0 {
		return 0, nil
	}
	var (
		n     uintptr
		errno syscall.Errno
	)
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
			switch errno {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return !wait // false: wait until the socket is writable
			}
			return true
		}
	})
	runtime.KeepAlive(bufs)
	clear(v)
	switch {
	case err != nil:
		return 0, err
	case errno == syscall.EAGAIN:
		return 0, nil
	case errno != 0:
		return 0, errno
	}
	return int(n), nil
}
