package dsw

import (
	"net/url"
	"strings"
	"testing"

	"github.com/snapstack/snapstack/internal/apierr"
)

func isValidation(t *testing.T, err error, status int) {
	t.Helper()
	e := apierr.As(err)
	if e == nil || e.Code != CodeValidation || e.HTTPStatus != status {
		t.Errorf("error = %v, want %s %d", err, CodeValidation, status)
	}
}

func TestSnapshotNameRule(t *testing.T) {
	for _, ok := range []string{"a", "snapshot-v1", "0abc", "a--b", strings.Repeat("a", 128)} {
		if err := checkSnapshotName(ok); err != nil {
			t.Errorf("%q rejected: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Snap", "my snap", "snap_1", "-a", "a.b", "快照", strings.Repeat("a", 129), "a/b"} {
		isValidation(t, checkSnapshotName(bad), 400)
	}
}

func TestInstanceNameRule(t *testing.T) {
	for _, ok := range []string{"", "nb_1", "A", strings.Repeat("x", 27)} {
		if err := checkInstanceName(ok); err != nil {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"nb-1", "a b", strings.Repeat("x", 28), "名字"} {
		isValidation(t, checkInstanceName(bad), 400)
	}
}

func TestExcludePaths(t *testing.T) {
	got, err := cleanExcludePaths([]string{"/mnt/data", "/tmp/", "//var//log"})
	if err != nil || strings.Join(got, ",") != "mnt/data,tmp,var/log" {
		t.Fatalf("clean = %v, %v", got, err)
	}
	for _, bad := range [][]string{
		{"/mnt/../etc"}, {"/.."}, {"/a/./b"}, {"../x"}, {"relative/path"}, {""}, {"/"}, {"//"},
		{"/a\x00b"}, {"/a\nb"}, {"/" + strings.Repeat("a", 5000)}, make([]string, 101),
	} {
		_, err := cleanExcludePaths(bad)
		isValidation(t, err, 400)
	}
}

func TestLabelsRule(t *testing.T) {
	got, err := checkLabels("Labels", []label{{"k1", "v1"}, {"stsTokenOwner", ""}})
	if err != nil || len(got) != 2 || got[0].Key != "k1" {
		t.Fatalf("labels = %v, %v", got, err)
	}
	for _, bad := range [][]label{{{"", "v"}}, {{"k", "v"}, {"k", "w"}}, {{strings.Repeat("k", 129), ""}}, {{"k", "a\x01"}}, make([]label, 65)} {
		_, err := checkLabels("Labels", bad)
		isValidation(t, err, 400)
	}
}

func TestImageURLRule(t *testing.T) {
	n, err := parseImage("ImageUrl", "127.0.0.1:5000/ns/repo", "snap-v1", false)
	if err != nil || n.String() != "127.0.0.1:5000/ns/repo:snap-v1" {
		t.Fatalf("default tag: %v %v", n, err)
	}
	for _, bad := range []string{"", "ns/repo:t", "https://r.example.com/ns/repo:t", "r.example.com/ns/../x:t", "r.example.com/ns/repo@sha256:" + strings.Repeat("a", 64)} {
		_, err := parseImage("ImageUrl", bad, "snap", false)
		isValidation(t, err, 400)
	}
	if _, err := parseImage("ImageUrl", "r.example.com/ns/repo@sha256:"+strings.Repeat("a", 64), "latest", true); err != nil {
		t.Errorf("base image by digest rejected: %v", err)
	}
}

func TestPagingAndOrder(t *testing.T) {
	p, err := paging(url.Values{"PageNumber": {"3"}, "PageSize": {"20"}})
	if err != nil || p.Offset != 40 || p.Limit != 20 {
		t.Fatalf("paging = %+v %v", p, err)
	}
	if p, _ := paging(url.Values{}); p.Offset != 0 || p.Limit != 10 {
		t.Errorf("defaults = %+v", p)
	}
	for _, q := range []url.Values{{"PageNumber": {"0"}}, {"PageSize": {"101"}}, {"PageSize": {"x"}}} {
		_, err := paging(q)
		isValidation(t, err, 400)
	}
	if asc, err := order(url.Values{"Order": {"asc"}}); !asc || err != nil {
		t.Error("asc")
	}
	_, err = order(url.Values{"Order": {"up"}})
	isValidation(t, err, 400)
}

func TestDecodeBody(t *testing.T) {
	var b createSnapshotBody
	if err := decode([]byte(`{"SnapshotName":"a","Overwrite":true,"Unknown":1}`), &b); err != nil || !b.Overwrite {
		t.Fatalf("decode: %v %+v", err, b)
	}
	if err := decode(nil, &b); err != nil {
		t.Errorf("empty body: %v", err)
	}
	err := decode([]byte(`{"Overwrite":"yes"}`), &b)
	isValidation(t, err, 400)
	if !strings.Contains(apierr.As(err).Message, "Overwrite") {
		t.Errorf("message %q does not name the field", apierr.As(err).Message)
	}
	isValidation(t, decode([]byte(`{"SnapshotName":`), &b), 400)
	isValidation(t, decode([]byte(`[1]`), &b), 400)
}
