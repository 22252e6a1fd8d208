package oci

import (
	"errors"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// ImageName is a validated image reference with an explicit registry.
type ImageName struct {
	Registry   string // host[:port] as written, e.g. "127.0.0.1:5000"
	Repository string // e.g. "ns/repo"
	Tag        string // "" when Digest is set
	Digest     string
}

// String is the canonical form: registry/repository:tag or @digest.
func (n ImageName) String() string {
	if n.Digest != "" {
		return n.Registry + "/" + n.Repository + "@" + n.Digest
	}
	return n.Registry + "/" + n.Repository + ":" + n.Tag
}

// repoRe is the repository grammar of the distribution specification
// (it rules out "..", empty components and upper case).
// tagRe is its tag grammar.
var (
	repoRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRe  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
)

// MaxImageURL is the longest image reference accepted.
const MaxImageURL = 512

// ParseImageName validates s: no URL scheme, no whitespace, an explicit
// registry host (a first component with '.' or ':', or "localhost"), a
// lower-case repository path, and a tag or (when allowDigest) a digest. A
// reference without either gets defaultTag; defaultTag "" makes the tag
// required. Error messages are safe to show to clients.
func ParseImageName(s, defaultTag string, allowDigest bool) (ImageName, error) {
	var n ImageName
	switch {
	case s == "":
		return n, errors.New("the image reference is empty")
	case len(s) > MaxImageURL:
		return n, errors.New("the image reference is longer than 512 characters")
	case strings.ContainsAny(s, " \t\r\n\x00") || strings.Contains(s, "://"):
		return n, errors.New("the image reference must be registry/namespace/repository[:tag], without a scheme or spaces")
	}
	host, rest, ok := strings.Cut(s, "/")
	if !ok || rest == "" || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return n, errors.New("the image reference must start with a registry host, e.g. registry.example.com/ns/repo:tag")
	}
	repoPart, digest, hasDigest := strings.Cut(rest, "@")
	tag := ""
	if i := strings.LastIndexByte(repoPart, ':'); i >= 0 && !strings.Contains(repoPart[i:], "/") {
		repoPart, tag = repoPart[:i], repoPart[i+1:]
	}
	if hasDigest && !allowDigest {
		return n, errors.New("the image reference must name a tag, not a digest")
	}
	if !hasDigest && tag == "" {
		if defaultTag == "" {
			return n, errors.New("the image reference must name a tag")
		}
		tag = defaultTag
	}
	if !repoRe.MatchString(repoPart) {
		return n, errors.New("the repository path must be lower-case components of letters and digits separated by '/', '.', '_' or '-'")
	}
	if !hasDigest && !tagRe.MatchString(tag) {
		return n, errors.New("the tag must be 1-128 letters, digits, '_', '.' or '-', not starting with '.' or '-'")
	}
	full := host + "/" + repoPart
	if hasDigest {
		full += "@" + digest
	} else {
		full += ":" + tag
	}
	ref, err := name.ParseReference(full, name.StrictValidation)
	if err != nil {
		return n, errors.New("the image reference is malformed: " + err.Error())
	}
	n.Registry, n.Repository = host, ref.Context().RepositoryStr()
	if hasDigest {
		n.Digest = ref.Identifier()
	} else {
		n.Tag = ref.Identifier()
	}
	return n, nil
}
