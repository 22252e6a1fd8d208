package blob_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/snapstack/snapstack/internal/blob"
)

func TestValidateName(t *testing.T) {
	long := strings.Repeat("a", blob.MaxSegmentLen)
	valid := []string{
		"a",
		"chunks/ab/abcdef0123456789",
		"manifests/snap-1234.json",
		"x/a-b_c.d~e+f=g,h@i:j",
		"a/b/c/d/e/f",
		"a..b/c..",
		long,
		long + "/" + long,
		strings.Repeat("ab/", (blob.MaxNameLen-1)/3) + "z",
	}
	for _, name := range valid {
		if err := blob.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%.40q) = %v, want nil", name, err)
		}
	}
	invalid := []string{
		"",
		"/",
		"/a",
		"a/",
		"a//b",
		"..",
		"a/../b",
		"a/..",
		".",
		"a/./b",
		".hidden",
		"a/.tmp-123",
		"a b",
		"a\tb",
		"a\nb",
		"a\x00b",
		"a\x7fb",
		"caf\u00e9",
		long + "a",
		strings.Repeat("a/", blob.MaxNameLen/2) + "a",
	}
	for _, name := range invalid {
		err := blob.ValidateName(name)
		if !errors.Is(err, blob.ErrInvalidName) {
			t.Errorf("ValidateName(%.40q) = %v, want ErrInvalidName", name, err)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	valid := []string{"", "a", "a/", "chunks/", "chunks/a", "chunks/ab/", "a/b/c"}
	for _, p := range valid {
		if err := blob.ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", p, err)
		}
	}
	invalid := []string{"/", "/a", "a//", "a//b", "../", "a/../", "a/.", ".", "a b", "\x00"}
	for _, p := range invalid {
		err := blob.ValidatePrefix(p)
		if !errors.Is(err, blob.ErrInvalidName) {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrInvalidName", p, err)
		}
	}
}

func TestErrorMentionsName(t *testing.T) {
	err := blob.ValidateName("a/../b")
	if err == nil || !strings.Contains(err.Error(), `"a/../b"`) {
		t.Fatalf("error %v does not quote the name", err)
	}
}
