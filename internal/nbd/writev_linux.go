package nbd

import (
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
			if errno != syscall.EINTR {
				return true // never wait for the socket
			}
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
