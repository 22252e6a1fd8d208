package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type entry struct {
	typ      byte
	mode     int64
	link     string
	body     string
	mtime    time.Time
	uid, gid int
}

func readTar(t *testing.T, r io.Reader) (map[string]entry, []string) {
	t.Helper()
	tr := tar.NewReader(r)
	got := map[string]entry{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got, order
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = entry{typ: h.Typeflag, mode: h.Mode, link: h.Linkname, body: string(b), mtime: h.ModTime, uid: h.Uid, gid: h.Gid}
		order = append(order, h.Name)
	}
}

func write(t *testing.T, root, rel, body string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// TestWriteLayer builds a layer from a directory holding every kind of
// entry and checks the tar: names, types, modes, mtimes, link targets,
// content, whiteouts, excluded paths and sorted order.
func TestWriteLayer(t *testing.T) {
	root := t.TempDir()
	mt := time.Date(2024, 5, 6, 7, 8, 9, 500, time.UTC)
	write(t, root, "etc/app.conf", "key=value\n", 0o640)
	write(t, root, "bin/run.sh", "#!/bin/sh\n", 0o755)
	write(t, root, "home/u/.cache/big", "cache", 0o600)
	write(t, root, "mnt/data/x", "secret", 0o644)
	write(t, root, "tmp/scratch", "t", 0o644)
	write(t, root, "var/.wh.gone-by-file", "", 0o644)
	write(t, root, "var/.wh.excluded-target", "", 0o644)
	os.Chmod(filepath.Join(root, "bin"), 0o750|os.ModeSticky)
	os.Symlink("../etc/app.conf", filepath.Join(root, "bin/conf"))
	outside := t.TempDir()
	write(t, outside, "passwd", "host secret", 0o644)
	os.Symlink(outside, filepath.Join(root, "escape")) // archived as a link, never followed
	os.Link(filepath.Join(root, "etc/app.conf"), filepath.Join(root, "etc/app.hard"))
	syscall.Mkfifo(filepath.Join(root, "var/fifo"), 0o600)
	os.Chtimes(filepath.Join(root, "etc/app.conf"), mt, mt)
	os.Lchown(filepath.Join(root, "bin/run.sh"), 1234, 5678)

	whiteouts := syscall.Mknod(filepath.Join(root, "etc/deleted"), syscall.S_IFCHR|0o000, 0) == nil
	os.MkdirAll(filepath.Join(root, "opt/fresh"), 0o755)
	opaque := unix.Setxattr(filepath.Join(root, "opt/fresh"), "trusted.overlay.opaque", []byte("y"), 0) == nil ||
		unix.Setxattr(filepath.Join(root, "opt/fresh"), "user.overlay.opaque", []byte("y"), 0) == nil
	write(t, root, "opt/fresh/new", "n", 0o644)

	var buf bytes.Buffer
	st, err := WriteLayer(context.Background(), &buf, root, []string{"mnt/data", "tmp", "home/u/.cache", "var/excluded-target"})
	if err != nil {
		t.Fatal(err)
	}
	got, order := readTar(t, &buf)

	check := func(name string, typ byte, mode int64, body string) {
		t.Helper()
		e, ok := got[name]
		if !ok {
			t.Errorf("%s missing; have %v", name, order)
			return
		}
		if e.typ != typ || e.mode&0o7777 != mode || e.body != body {
			t.Errorf("%s = type %c mode %o body %q; want %c %o %q", name, e.typ, e.mode, e.body, typ, mode, body)
		}
	}
	check("etc/", tar.TypeDir, 0o755, "")
	check("etc/app.conf", tar.TypeReg, 0o640, "key=value\n")
	check("bin/", tar.TypeDir, 0o1750, "")
	check("bin/run.sh", tar.TypeReg, 0o755, "#!/bin/sh\n")
	check("var/.wh.gone-by-file", tar.TypeReg, 0o644, "")
	check("var/fifo", tar.TypeFifo, 0o600, "")
	if e := got["bin/conf"]; e.typ != tar.TypeSymlink || e.link != "../etc/app.conf" {
		t.Errorf("symlink = %+v", e)
	}
	if e := got["escape"]; e.typ != tar.TypeSymlink || e.link != outside {
		t.Errorf("directory symlink = %+v", e)
	}
	for name, e := range got {
		if e.body == "host secret" {
			t.Errorf("%s holds a file from outside the root", name)
		}
	}
	if e := got["etc/app.hard"]; e.typ != tar.TypeLink || e.link != "etc/app.conf" {
		t.Errorf("hard link = %+v", e)
	}
	if e := got["etc/app.conf"]; !e.mtime.Equal(mt.Truncate(time.Second)) {
		t.Errorf("mtime = %v, want %v", e.mtime, mt.Truncate(time.Second))
	}
	if e := got["bin/run.sh"]; os.Geteuid() == 0 && (e.uid != 1234 || e.gid != 5678) {
		t.Errorf("owner = %d:%d", e.uid, e.gid)
	}
	for _, name := range order {
		for _, ex := range []string{"mnt/data", "tmp", "home/u/.cache", "var/.wh.excluded-target"} {
			if name == ex || name == ex+"/" || strings.HasPrefix(name, ex+"/") {
				t.Errorf("excluded path %s is in the layer", name)
			}
		}
	}
	if _, ok := got["mnt/"]; !ok {
		t.Error("the parent of an excluded path is missing")
	}
	var again bytes.Buffer
	if _, err := WriteLayer(context.Background(), &again, root, []string{"mnt/data", "tmp", "home/u/.cache", "var/excluded-target"}); err != nil {
		t.Fatal(err)
	}
	if _, order2 := readTar(t, &again); strings.Join(order2, ",") != strings.Join(order, ",") || !sort.StringsAreSorted(order[:4]) {
		t.Errorf("order not deterministic (depth first, names sorted): %v", order)
	}
	if whiteouts {
		check("etc/.wh.deleted", tar.TypeReg, 0o600, "")
		if _, ok := got["etc/deleted"]; ok {
			t.Error("whiteout device copied as a device")
		}
	} else {
		t.Log("mknod not permitted: overlay whiteout devices not checked")
	}
	if opaque {
		check("opt/fresh/.wh..wh..opq", tar.TypeReg, 0o600, "")
		if st.Opaques != 1 {
			t.Errorf("opaques = %d", st.Opaques)
		}
	} else {
		t.Log("xattrs not supported here: opaque directories not checked")
	}
	if st.Excluded != 4 || st.Symlinks != 2 || st.Links != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestWriteLayerFileAndErrors(t *testing.T) {
	root := t.TempDir()
	write(t, root, "a", "x", 0o644)
	dst := filepath.Join(t.TempDir(), "layer.tar.gz")
	st, err := WriteLayerFile(context.Background(), dst, root, nil)
	if err != nil || st.Files != 1 || st.Bytes != 1 {
		t.Fatalf("WriteLayerFile: %+v %v", st, err)
	}
	if b, _ := os.ReadFile(dst); len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatal("layer file is not gzip")
	}
	if _, err := WriteLayer(context.Background(), io.Discard, filepath.Join(root, "a"), nil); err == nil {
		t.Error("a file as root accepted")
	}
	if _, err := WriteLayer(context.Background(), io.Discard, filepath.Join(root, "missing"), nil); err == nil {
		t.Error("missing root accepted")
	}
}
