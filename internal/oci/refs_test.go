package oci

import (
	"strings"
	"testing"
)

func TestParseImageName(t *testing.T) {
	for _, c := range []struct {
		in, def     string
		allowDigest bool
		want        string // "" = error
	}{
		{"registry.cn-hangzhou.aliyuncs.com/ns/repo:tag1", "snap", false, "registry.cn-hangzhou.aliyuncs.com/ns/repo:tag1"},
		{"127.0.0.1:5000/ns/repo", "snap-v1", false, "127.0.0.1:5000/ns/repo:snap-v1"},
		{"localhost/repo:v", "", false, "localhost/repo:v"},
		{"127.0.0.1:9090/a/b/c:V_1.0", "", false, "127.0.0.1:9090/a/b/c:V_1.0"},
		{"127.0.0.1:5000/ns/repo@sha256:" + strings.Repeat("a", 64), "", true, "127.0.0.1:5000/ns/repo@sha256:" + strings.Repeat("a", 64)},
		{"127.0.0.1:5000/ns/repo@sha256:" + strings.Repeat("a", 64), "x", false, ""},
		{"127.0.0.1:5000/ns/repo", "", false, ""}, // tag required
		{"ns/repo:tag", "x", false, ""},           // no registry host
		{"repo", "x", false, ""},                  // no registry host
		{"http://127.0.0.1:5000/ns/repo:t", "", false, ""},
		{"127.0.0.1:5000/ns/../repo:t", "", false, ""},
		{"127.0.0.1:5000/ns//repo:t", "", false, ""},
		{"127.0.0.1:5000/NS/repo:t", "", false, ""},
		{"127.0.0.1:5000/ns/repo:bad tag", "", false, ""},
		{"127.0.0.1:5000/ns/repo:-bad", "", false, ""},
		{"127.0.0.1:5000/", "x", false, ""},
		{"", "x", false, ""},
		{"127.0.0.1:5000/" + strings.Repeat("a", 520) + ":t", "", false, ""},
		{"127.0.0.1:5000/ns/repo:" + strings.Repeat("t", 129), "", false, ""},
	} {
		n, err := ParseImageName(c.in, c.def, c.allowDigest)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("ParseImageName(%q) = %s, want an error", c.in, n)
		case c.want != "" && err != nil:
			t.Errorf("ParseImageName(%q): %v", c.in, err)
		case c.want != "" && n.String() != c.want:
			t.Errorf("ParseImageName(%q) = %s, want %s", c.in, n, c.want)
		}
	}
	n, _ := ParseImageName("127.0.0.1:9090/ns/repo:v1", "", false)
	if n.Registry != "127.0.0.1:9090" || n.Repository != "ns/repo" || n.Tag != "v1" {
		t.Errorf("parts = %+v", n)
	}
}
