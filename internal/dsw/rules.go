package dsw

import (
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/oci"
)

// The parameter rules of PAI-DSW, each in one place. Lengths are counted
// in characters.

var (
	// snapshotNameRe: lower-case letters, digits and '-' (seed 003); the
	// name becomes an image tag, so it starts with a letter or digit and
	// has at most 128 characters.
	snapshotNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,127}$`)
	// instanceNameRe: letters, digits and '_', at most 27 characters.
	instanceNameRe = regexp.MustCompile(`^[A-Za-z0-9_]{1,27}$`)
	envNameRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Limits of our choosing (the documents give none).
const (
	maxDescription  = 1024
	maxLabels       = 64
	maxLabelKey     = 128
	maxLabelValue   = 4096
	maxExcludePaths = 100
	maxExcludePath  = 4096
	maxEnv          = 100
	maxPageSize     = 100
)

func checkSnapshotName(s string) error {
	if s == "" {
		return invalid("SnapshotName is required.")
	}
	if !snapshotNameRe.MatchString(s) {
		return invalid("SnapshotName %q is not valid: 1-128 lower-case letters, digits and hyphens, starting with a letter or digit.", s)
	}
	return nil
}

func checkInstanceName(s string) error {
	if s != "" && !instanceNameRe.MatchString(s) {
		return invalid("InstanceName %q is not valid: 1-27 letters, digits and underscores.", s)
	}
	return nil
}

func checkDescription(s string) error {
	if utf8.RuneCountInString(s) > maxDescription {
		return invalid("SnapshotDescription is longer than %d characters.", maxDescription)
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return utf8.ValidString(s)
}

// checkLabels validates Labels: at most 64, each key 1-128 printable
// characters, each value at most 4096, no duplicate key.
func checkLabels(param string, ls []label) ([]meta.Tag, error) {
	if len(ls) > maxLabels {
		return nil, invalid("%s has more than %d entries.", param, maxLabels)
	}
	seen := map[string]bool{}
	out := make([]meta.Tag, 0, len(ls))
	for i, l := range ls {
		n := utf8.RuneCountInString(l.Key)
		if n == 0 || n > maxLabelKey || !printable(l.Key) {
			return nil, invalid("%s[%d].Key must be 1-%d printable characters.", param, i, maxLabelKey)
		}
		if utf8.RuneCountInString(l.Value) > maxLabelValue || !printable(l.Value) {
			return nil, invalid("%s[%d].Value must be at most %d printable characters.", param, i, maxLabelValue)
		}
		if seen[l.Key] {
			return nil, invalid("%s has the key %q twice.", param, l.Key)
		}
		seen[l.Key] = true
		out = append(out, meta.Tag{Key: l.Key, Value: l.Value})
	}
	return out, nil
}

// cleanExcludePaths validates ExcludePaths and returns them relative to
// the filesystem root ("/mnt/data/" -> "mnt/data"). Each must be absolute,
// must not contain "." or ".." components (no path traversal) or control
// characters, and must not be "/" itself.
func cleanExcludePaths(ps []string) ([]string, error) {
	if len(ps) > maxExcludePaths {
		return nil, invalid("ExcludePaths has more than %d entries.", maxExcludePaths)
	}
	out := make([]string, 0, len(ps))
	for i, p := range ps {
		if p == "" || len(p) > maxExcludePath || !printable(p) || strings.ContainsRune(p, 0) {
			return nil, invalid("ExcludePaths[%d] must be an absolute path of at most %d printable characters.", i, maxExcludePath)
		}
		if !strings.HasPrefix(p, "/") {
			return nil, invalid("ExcludePaths[%d] %q is not an absolute path.", i, p)
		}
		for _, c := range strings.Split(p, "/") {
			if c == ".." || c == "." {
				return nil, invalid("ExcludePaths[%d] %q must not contain \".\" or \"..\" components.", i, p)
			}
		}
		rel := strings.TrimPrefix(path.Clean(p), "/")
		if rel == "" {
			return nil, invalid("ExcludePaths[%d] %q would exclude the whole filesystem.", i, p)
		}
		out = append(out, rel)
	}
	return out, nil
}

// parseImage validates an image reference parameter. For a snapshot the
// reference must name a tag or none (then the tag is SnapshotName); for an
// instance's base image a digest is allowed and the tag defaults to latest.
func parseImage(param, s, defaultTag string, base bool) (oci.ImageName, error) {
	if s == "" {
		return oci.ImageName{}, invalid("%s is required.", param)
	}
	n, err := oci.ParseImageName(s, defaultTag, base)
	if err != nil {
		return n, invalid("%s %q is not valid: %s.", param, truncate(s, 200), err.Error())
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// paging reads PageNumber (>= 1, default 1) and PageSize (1-100, default
// 10) from the query.
func paging(q url.Values) (meta.Page, error) {
	num, size := 1, 10
	for _, p := range []struct {
		name string
		dst  *int
		max  int
	}{{"PageNumber", &num, 1 << 30}, {"PageSize", &size, maxPageSize}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > p.max {
			return meta.Page{}, invalid("%s %q is not valid: an integer from 1 to %d.", p.name, v, p.max)
		}
		*p.dst = n
	}
	return meta.Page{Offset: (num - 1) * size, Limit: size}, nil
}

// order reads Order: DESC (default) or ASC, in any case.
func order(q url.Values) (ascending bool, err error) {
	switch strings.ToUpper(q.Get("Order")) {
	case "", "DESC":
		return false, nil
	case "ASC":
		return true, nil
	}
	return false, invalid("Order %q is not valid: ASC or DESC.", q.Get("Order"))
}

func checkEnv(env map[string]string) *apierr.Error {
	if len(env) > maxEnv {
		return invalid("EnvironmentVariables has more than %d entries.", maxEnv)
	}
	for k, v := range env {
		if !envNameRe.MatchString(k) || strings.ContainsRune(v, 0) {
			return invalid("EnvironmentVariables key %q is not a valid variable name.", truncate(k, 64))
		}
	}
	return nil
}
