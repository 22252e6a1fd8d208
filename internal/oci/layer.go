// Package oci turns the writable directory of a container (an overlayfs
// upper directory) into an OCI image layer and pushes an image made of a
// base image plus that layer, with go-containerregistry.
//
// The layer is a tar stream of the directory, in sorted order, with the
// ownership, permissions, modification times (to the second), symlinks,
// hard links, device nodes and FIFOs of the files. Overlay whiteouts become
// OCI whiteouts: a character device 0/0 (a deleted file or directory)
// becomes an empty `.wh.<name>` entry, and a directory marked opaque (the
// trusted.overlay.opaque or user.overlay.opaque xattr set to "y") is
// followed by a `.wh..wh..opq` entry. Files already named `.wh.<name>` pass
// through unchanged. Sockets and extended attributes are not recorded.
//
// Images are pushed with OCI media types (manifest, config and layers; a
// base image with Docker media types is converted).
package oci

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// OCI whiteout names.
const (
	WhiteoutPrefix = ".wh."
	OpaqueWhiteout = ".wh..wh..opq"
)

// LayerStats counts what a layer holds.
type LayerStats struct {
	Files, Dirs, Symlinks, Links, Others int
	Whiteouts, Opaques                   int
	Excluded, Skipped                    int // paths left out: by ExcludePaths, and sockets
	Bytes                                int64
}

// WriteLayer writes the tar stream of the directory root to w. exclude
// holds clean paths relative to root ("mnt/data"); each is left out with
// everything under it, including whiteouts naming it. The directory is
// read through an os.Root: a symlink, or a file swapped while it is read,
// never makes the layer include anything from outside root.
//
// It stops with ctx's error when ctx ends (checked between entries and
// every megabyte of file content).
func WriteLayer(ctx context.Context, w io.Writer, root string, exclude []string) (LayerStats, error) {
	var st LayerStats
	r, err := os.OpenRoot(root)
	if err != nil {
		return st, err
	}
	defer r.Close()
	f, err := r.Open(".")
	if err != nil {
		return st, err
	}
	defer f.Close()
	lw := &layerWriter{ctx: ctx, tw: tar.NewWriter(w), root: r, exclude: exclude, links: map[fileID]string{}}
	if err := lw.dir("", f); err != nil {
		return lw.st, err
	}
	return lw.st, lw.tw.Close()
}

// WriteLayerFile writes the gzip-compressed layer of root to the file dst.
func WriteLayerFile(ctx context.Context, dst, root string, exclude []string) (LayerStats, error) {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return LayerStats{}, err
	}
	zw := gzip.NewWriter(f)
	st, err := WriteLayer(ctx, zw, root, exclude)
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return st, err
}

type fileID struct{ dev, ino uint64 }

// ctxReader reads r until ctx ends, in reads of at most a megabyte.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p[:min(len(p), 1<<20)])
}

type layerWriter struct {
	ctx     context.Context
	tw      *tar.Writer
	root    *os.Root
	exclude []string
	links   map[fileID]string // first tar name of each multiply-linked file
	st      LayerStats
}

func (l *layerWriter) excluded(rel string) bool {
	for _, e := range l.exclude {
		if rel == e || strings.HasPrefix(rel, e+"/") {
			return true
		}
	}
	return false
}

// dir writes the entries of the open directory rel ("" is the root),
// sorted by name.
func (l *layerWriter) dir(rel string, f *os.File) error {
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := l.entry(path.Join(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

// open opens rel and checks that it is still the file fi describes.
func (l *layerWriter) open(rel string, fi fs.FileInfo) (*os.File, error) {
	f, err := l.root.Open(filepath.FromSlash(rel))
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !os.SameFile(fi, st) {
		f.Close()
		return nil, fmt.Errorf("oci: %s changed while read", rel)
	}
	return f, nil
}

func (l *layerWriter) entry(rel string) error {
	if err := l.ctx.Err(); err != nil {
		return err
	}
	dir, base := path.Split(rel)
	target := rel
	if strings.HasPrefix(base, WhiteoutPrefix) && base != OpaqueWhiteout {
		target = dir + strings.TrimPrefix(base, WhiteoutPrefix)
	}
	if l.excluded(rel) || l.excluded(target) {
		l.st.Excluded++
		return nil
	}
	fi, err := l.root.Lstat(filepath.FromSlash(rel))
	if err != nil {
		return err
	}
	sys, _ := fi.Sys().(*syscall.Stat_t)
	mtime := fi.ModTime().Truncate(time.Second)
	switch {
	case isOverlayWhiteout(fi):
		l.st.Whiteouts++
		return l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + WhiteoutPrefix + base, Mode: 0o600, ModTime: mtime, Format: tar.FormatPAX})
	case fi.Mode()&fs.ModeSocket != 0:
		l.st.Skipped++
		return nil
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = l.root.Readlink(filepath.FromSlash(rel)); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name, hdr.ModTime, hdr.Uname, hdr.Gname = rel, mtime, "", ""
	hdr.AccessTime, hdr.ChangeTime, hdr.Format = time.Time{}, time.Time{}, tar.FormatPAX
	if sys != nil && fi.Mode().IsRegular() && sys.Nlink > 1 {
		id := fileID{uint64(sys.Dev), sys.Ino}
		if first, ok := l.links[id]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			l.st.Links++
			return l.tw.WriteHeader(hdr)
		}
		l.links[id] = rel
	}
	switch {
	case fi.IsDir():
		hdr.Name = rel + "/"
		l.st.Dirs++
		f, err := l.open(rel, fi)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := l.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if isOpaque(f) {
			l.st.Opaques++
			if err := l.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel + "/" + OpaqueWhiteout, Mode: 0o600, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		return l.dir(rel, f)
	case fi.Mode().IsRegular():
		return l.regular(hdr, fi)
	case link != "":
		l.st.Symlinks++
	default:
		l.st.Others++
	}
	return l.tw.WriteHeader(hdr)
}

// regular writes a file's header and content; a file that changed size
// while read is an error (the snapshot would be torn).
func (l *layerWriter) regular(hdr *tar.Header, fi fs.FileInfo) error {
	f, err := l.open(hdr.Name, fi)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := l.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(l.tw, ctxReader{l.ctx, io.LimitReader(f, hdr.Size)})
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return fmt.Errorf("oci: %s changed size while read", hdr.Name)
	}
	// A file that grew meanwhile would be cut at its old size.
	if fi2, err := f.Stat(); err != nil {
		return err
	} else if fi2.Size() != hdr.Size {
		return fmt.Errorf("oci: %s changed size while read", hdr.Name)
	}
	l.st.Files++
	l.st.Bytes += n
	return nil
}
