package ecs

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// The naming rules of the seeds, each in one place. Lengths are counted in
// characters (runes), not bytes, so a Chinese name of 128 characters is
// valid.

func hasHTTPPrefix(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")
}

// validName is the rule of SnapshotName (seed 004, 002), DiskName and
// InstanceName: 2-128 characters, starting with a letter (Chinese letters
// count as letters), then letters, digits, ':', '_', '-' and, when
// allowDot, '.'; never starting with http:// or https://.
func validName(s string, allowDot bool) bool {
	n := utf8.RuneCountInString(s)
	if n < 2 || n > 128 || hasHTTPPrefix(s) {
		return false
	}
	for i, r := range s {
		if i == 0 {
			if !unicode.IsLetter(r) {
				return false
			}
			continue
		}
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == ':', r == '_', r == '-':
		case r == '.' && allowDot:
		default:
			return false
		}
	}
	return true
}

// checkSnapshotName applies seed 004's SnapshotName rule, including the
// reserved "auto" prefix of automatic snapshots.
func checkSnapshotName(name string) error {
	if name == "" {
		return nil
	}
	if !validName(name, false) || strings.HasPrefix(name, "auto") {
		return apierr.InvalidSnapshotName
	}
	return nil
}

// validDescription: 2-256 characters, not starting with http(s)://.
// Empty means "not set" and is valid.
func validDescription(s string) bool {
	if s == "" {
		return true
	}
	n := utf8.RuneCountInString(s)
	return n >= 2 && n <= 256 && !hasHTTPPrefix(s)
}

// validModifiedDescription is ModifySnapshotAttribute's rule (spec 1.4):
// empty (cleared) or at most 256 characters, not starting with
// http(s)://. CreateSnapshot's 2-character minimum does not apply.
func validModifiedDescription(s string) bool {
	return utf8.RuneCountInString(s) <= 256 && !hasHTTPPrefix(s)
}

const (
	maxTags          = 20
	maxRetentionDays = 65536
	maxIARetention   = 65535
)

// parseTags decodes Tag.N.Key/Value (and the deprecated Tag.N.key/value)
// with seed 004's rules: N 1-20, key 1-128 characters not starting with
// "aliyun" or "acs:" and not containing http(s)://, value 0-128 characters
// not starting with "acs:" and not containing http(s)://, no duplicate key.
func parseTags(p param.Values) ([]meta.Tag, error) {
	entries := p.List("Tag")
	if len(entries) == 0 {
		return nil, nil
	}
	var tags []meta.Tag
	seen := map[string]bool{}
	for _, e := range entries {
		key, hasKey := e.Get("Key", "key")
		value, hasValue := e.Get("Value", "value")
		if !hasKey && !hasValue {
			continue
		}
		if e.N > maxTags {
			return nil, apierr.QuotaExceedTags.WithMessagef("The maximum number of tags is %d.", maxTags)
		}
		if !hasKey || !validTagKey(key) {
			return nil, apierr.InvalidTagKey
		}
		if !validTagValue(value) {
			return nil, apierr.InvalidTagValue
		}
		if seen[key] {
			return nil, apierr.DuplicateTagKey
		}
		seen[key] = true
		tags = append(tags, meta.Tag{Key: key, Value: value})
	}
	return tags, nil
}

func containsHTTP(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "http://") || strings.Contains(l, "https://")
}

func validTagKey(k string) bool {
	n := utf8.RuneCountInString(k)
	l := strings.ToLower(k)
	return n >= 1 && n <= 128 && !strings.HasPrefix(l, "aliyun") && !strings.HasPrefix(l, "acs:") && !containsHTTP(k)
}

func validTagValue(v string) bool {
	return utf8.RuneCountInString(v) <= 128 && !strings.HasPrefix(strings.ToLower(v), "acs:") && !containsHTTP(v)
}

// tagFilters decodes Tag.N filters of Describe* actions: a key is
// required, a value is optional.
func tagFilters(p param.Values) ([]meta.TagFilter, error) {
	var out []meta.TagFilter
	for _, e := range p.List("Tag") {
		key, hasKey := e.Get("Key", "key")
		value, hasValue := e.Get("Value", "value")
		if e.N > maxTags {
			return nil, apierr.InvalidTagCount
		}
		if !hasKey || key == "" {
			if hasValue {
				return nil, apierr.InvalidTagMismatch
			}
			continue
		}
		out = append(out, meta.TagFilter{Key: key, Value: value, HasValue: hasValue})
	}
	return out, nil
}

// creationFilters decodes Filter.N of the listings whose only keys are
// CreationStartTime and CreationEndTime (a time of yyyy-MM-ddTHH:mmZ):
// the creation time range, a zero time leaving that side open.
func creationFilters(p param.Values) (after, before time.Time, err error) {
	t, err := timeFilters(p, "CreationStartTime", "CreationEndTime")
	return t["CreationStartTime"], t["CreationEndTime"], err
}

// timeFilters decodes Filter.N, whose keys must be among keys
// (InvalidFilterKey.NotFound) and whose values are times
// (InvalidFilterValue); an empty value is no bound. It returns each
// key's time, zero when absent. An entry with neither key nor value is
// skipped.
func timeFilters(p param.Values, keys ...string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(keys))
	for _, e := range p.List("Filter") {
		key, value := e.Fields["Key"], e.Fields["Value"]
		if key == "" && value == "" {
			continue
		}
		if !contains(keys, key) {
			return nil, apierr.InvalidFilterKey
		}
		var t time.Time
		if value != "" {
			var err error
			if t, err = parseFilterTime(value); err != nil {
				return nil, apierr.InvalidFilterValue
			}
		}
		out[key] = t
	}
	return out, nil
}

// BoolParam decodes the true/false parameter name (absent: ok false);
// another value is invalidBool(name).
func BoolParam(p param.Values, name string) (v, ok bool, err error) {
	return p.Bool(name, invalidBool(name))
}

// invalidBool is the error of a true/false parameter with another value:
// 400 InvalidParameter naming it and its values.
func invalidBool(name string) *apierr.Error {
	return apierr.InvalidParameter(name, "Valid values: true, false.")
}

// retentionDays decodes RetentionDays: 1-65536, 0 when absent.
func retentionDays(p param.Values) (int, error) {
	n, ok, err := p.Int("RetentionDays", apierr.InvalidRetentionDays)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, nil
	}
	if n < 1 || n > maxRetentionDays {
		return 0, apierr.InvalidRetentionDays
	}
	return int(n), nil
}

// checkClientToken: at most 64 ASCII characters.
func checkClientToken(tok string) error {
	if len(tok) > 64 {
		return apierr.InvalidClientToken
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] >= 0x80 {
			return apierr.InvalidClientToken
		}
	}
	return nil
}

// Disk categories and what they allow.
var (
	// categories that hold data on the host (local disks): no snapshots.
	localCategories = map[string]bool{"ephemeral": true, "ephemeral_ssd": true, "local_ssd_pro": true, "local_hdd_pro": true}
	// elastic ephemeral disks: a device type snapshots do not support.
	ephemeralCategories = map[string]bool{"elastic_ephemeral_disk_standard": true, "elastic_ephemeral_disk_premium": true}
	// cloudCategories: size range in GiB of each category a disk may have.
	cloudCategories = map[string][2]int{
		"cloud": {5, 2000}, "cloud_efficiency": {20, 32768}, "cloud_ssd": {20, 32768},
		"cloud_essd": {1, 65536}, "cloud_auto": {1, 65536}, "cloud_essd_entry": {10, 32768},
		"cloud_regional_disk_auto": {10, 65536},
		"ephemeral_ssd":            {5, 800}, "local_ssd_pro": {5, 8192}, "local_hdd_pro": {5, 8192}, "ephemeral": {5, 8192},
		"elastic_ephemeral_disk_standard": {64, 8192}, "elastic_ephemeral_disk_premium": {64, 8192},
	}
)

// essd reports whether a category is an enhanced SSD (instant access).
func essd(category string) bool {
	return category == "cloud_essd" || category == "cloud_auto" || category == "cloud_essd_entry" || category == "cloud_regional_disk_auto"
}
