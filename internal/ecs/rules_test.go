package ecs

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

func TestSnapshotNameRule(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"", true}, // not sent
		{"ab", true},
		{"a", false},
		{"nightly-backup:2026_11", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{strings.Repeat("快", 128), true}, // counted in characters, not bytes
		{strings.Repeat("快", 129), false},
		{"快照1", true},
		{"1snap", false},
		{"_snap", false},
		{"snap one", false},
		{"snap.one", false}, // seed 004 has no '.'
		{"auto-mine", false},
		{"autumn", true},
		{"Automatic", true},
		{"http://x", false},
		{"HTTPS://x", false},
	}
	for _, tc := range tests {
		err := checkSnapshotName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err=%v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, apierr.InvalidSnapshotName) {
			t.Errorf("%q: %v is not InvalidSnapshotName.Malformed", tc.name, err)
		}
	}
}

func TestDescriptionRule(t *testing.T) {
	for desc, ok := range map[string]bool{
		"": true, "a": false, "ab": true, strings.Repeat("描", 256): true, strings.Repeat("x", 257): false,
		"http://example.com": false, "see http://example.com": true,
	} {
		if validDescription(desc) != ok {
			t.Errorf("%q: want %v", desc, ok)
		}
	}
}

func TestTags(t *testing.T) {
	tests := []struct {
		q    string
		n    int
		code string
	}{
		{"Tag.1.Key=env&Tag.1.Value=dev&Tag.2.Key=team", 2, ""},
		{"Tag.1.key=env&Tag.1.value=dev", 1, ""}, // deprecated lower case
		{"Tag.1.Key=env&Tag.2.Key=env", 0, "Duplicate.TagKey"},
		{"Tag.1.Key=&Tag.1.Value=v", 0, "InvalidTagKey.Malformed"},
		{"Tag.1.Value=v", 0, "InvalidTagKey.Malformed"},
		{"Tag.1.Key=aliyun-x", 0, "InvalidTagKey.Malformed"},
		{"Tag.1.Key=acs:x", 0, "InvalidTagKey.Malformed"},
		{"Tag.1.Key=a-http://b", 0, "InvalidTagKey.Malformed"},
		{"Tag.1.Key=" + strings.Repeat("k", 129), 0, "InvalidTagKey.Malformed"},
		{"Tag.1.Key=k&Tag.1.Value=acs:v", 0, "InvalidTagValue.Malformed"},
		{"Tag.1.Key=k&Tag.1.Value=" + strings.Repeat("v", 129), 0, "InvalidTagValue.Malformed"},
		{"Tag.21.Key=k", 0, "QuotaExceed.Tags"},
		{"Tag.1.Key=aliyunlike&Tag.1.Value=aliyun", 0, "InvalidTagKey.Malformed"},
	}
	for _, tc := range tests {
		v, _ := url.ParseQuery(tc.q)
		tags, err := parseTags(param.New(v))
		if tc.code == "" {
			if err != nil || len(tags) != tc.n {
				t.Errorf("%s: %v, %d tags", tc.q, err, len(tags))
			}
			continue
		}
		if e := apierr.As(err); e == nil || e.Code != tc.code {
			t.Errorf("%s: got %v, want %s", tc.q, err, tc.code)
		}
	}
}

func TestCreateSnapshotParams(t *testing.T) {
	tests := []struct {
		q    string
		code string
	}{
		{"DiskId=d-1", ""},
		{"", "MissingParameter"},
		{"DiskId=d-1&RetentionDays=0", "InvalidRetentionDays.Malformed"},
		{"DiskId=d-1&RetentionDays=65537", "InvalidRetentionDays.Malformed"},
		{"DiskId=d-1&RetentionDays=65536", ""},
		{"DiskId=d-1&RetentionDays=ten", "InvalidRetentionDays.Malformed"},
		{"DiskId=d-1&Category=Standard&InstantAccess=false", "InvalidCategoryAndInstantAccess.Malformed"},
		{"DiskId=d-1&Category=Other", "InvalidSnapshotCategory.Malformed"},
		{"DiskId=d-1&InstantAccess=true&InstantAccessRetentionDays=65536", "InvalidInstantAccessRetentionDays.Malformed"},
		{"DiskId=d-1&InstantAccess=true&InstantAccessRetentionDays=65535", ""},
		{"DiskId=d-1&ClientToken=" + strings.Repeat("t", 65), "InvalidClientToken.Malformed"},
		{"DiskId=d-1&ClientToken=" + strings.Repeat("t", 64), ""},
		{"DiskId=d-1&Description=x", "InvalidDescription.Malformed"},
		{"DiskId=d-1&SnapshopName=1bad", "InvalidSnapshotName.Malformed"}, // seed 002 spelling
	}
	for _, tc := range tests {
		v, _ := url.ParseQuery(tc.q)
		_, err := parseCreateSnapshot(param.New(v))
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.q, err)
			}
			continue
		}
		if e := apierr.As(err); e == nil || e.Code != tc.code {
			t.Errorf("%s: got %v, want %s", tc.q, err, tc.code)
		}
	}
}

func TestInstantAccessRetentionDefaultsToRetention(t *testing.T) {
	v, _ := url.ParseQuery("DiskId=d-1&InstantAccess=true&RetentionDays=9")
	r, err := parseCreateSnapshot(param.New(v))
	if err != nil || r.iaRetention != 9 {
		t.Fatalf("%v %+v", err, r)
	}
}

func TestPaging(t *testing.T) {
	v, _ := url.ParseQuery("PageNumber=3&PageSize=5")
	pg, err := parsePaging(param.New(v), pagingLimits{min: 1, max: 100, def: 10})
	if err != nil || pg.Offset != 10 || pg.Limit != 5 {
		t.Fatalf("%v %+v", err, pg)
	}
	tok := pg.next(5, 40)
	v, _ = url.ParseQuery("MaxResults=7&NextToken=" + tok)
	pg, err = parsePaging(param.New(v), pagingLimits{min: 1, max: 100, def: 10})
	if err != nil || pg.Offset != 15 || pg.Limit != 7 {
		t.Fatalf("%v %+v", err, pg)
	}
	if pg.next(7, 22) != "" {
		t.Error("last page has a NextToken")
	}
	for _, q := range []string{"PageSize=101", "PageNumber=0", "MaxResults=0", "NextToken=garbage"} {
		v, _ = url.ParseQuery(q)
		if _, err := parsePaging(param.New(v), pagingLimits{min: 1, max: 100, def: 10}); err == nil {
			t.Errorf("%s accepted", q)
		}
	}
}

func TestInstantAccessEnds(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	snap := &meta.Snapshot{InstantAccess: true, InstantAccessExpiresAt: now.Add(24 * time.Hour)}
	if !instantAccess(snap, now) || instantAccess(snap, now.Add(25*time.Hour)) {
		t.Error("instant access must last InstantAccessRetentionDays")
	}
	if !instantAccess(&meta.Snapshot{InstantAccess: true}, now.Add(1000*time.Hour)) {
		t.Error("without a retention, instant access lasts")
	}
}
