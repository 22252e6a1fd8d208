package oci

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// isOverlayWhiteout reports whether fi is an overlayfs whiteout: a
// character device with device number 0/0.
func isOverlayWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 || fi.Mode()&fs.ModeDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// isOpaque reports whether the open directory d is an opaque overlay
// directory (its lower content is hidden): overlayfs marks it with the
// privileged attribute, or the user one on "userxattr" mounts.
func isOpaque(d *os.File) bool {
	buf := make([]byte, 8)
	for _, name := range [...]string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		n, err := unix.Fgetxattr(int(d.Fd()), name, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}
