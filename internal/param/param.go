// Package param decodes the flat parameters of RPC-style Alibaba Cloud
// requests (query or form body): scalars, 1-based repeat lists such as
// Tag.N.Key, and JSON-array strings such as SnapshotIds. Decoding errors
// are returned as the *apierr.Error the caller chooses, so that each rule
// keeps the code its document gives.
package param

import (
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/snapstack/snapstack/internal/apierr"
)

// Values are the decoded request parameters of one call.
type Values struct {
	v url.Values
}

// New wraps decoded parameters.
func New(v url.Values) Values { return Values{v: v} }

// Has reports whether name was sent (even with an empty value).
func (p Values) Has(name string) bool {
	_, ok := p.v[name]
	return ok
}

// String returns the value of name, "" when absent.
func (p Values) String(name string) string { return p.v.Get(name) }

// First returns the first non-empty value among names (aliases).
func (p Values) First(names ...string) string {
	for _, n := range names {
		if s := p.v.Get(n); s != "" {
			return s
		}
	}
	return ""
}

// Required returns the value of name or MissingParameter.
func (p Values) Required(name string) (string, error) {
	s := p.v.Get(name)
	if s == "" {
		return "", apierr.MissingParameter(name)
	}
	return s, nil
}

// Int returns the integer value of name; ok is false when absent or empty.
// A value that is not a decimal integer yields bad.
func (p Values) Int(name string, bad *apierr.Error) (n int64, ok bool, err error) {
	s := p.v.Get(name)
	if s == "" {
		return 0, false, nil
	}
	n, perr := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if perr != nil {
		return 0, false, bad
	}
	return n, true, nil
}

// Bool returns the boolean value of name; ok is false when absent.
// "true"/"false" in any case are accepted; anything else yields bad.
func (p Values) Bool(name string, bad *apierr.Error) (b, ok bool, err error) {
	return parseBool(p.v.Get(name), bad)
}

// parseBool decodes true or false (any case); "" is absent (ok false).
func parseBool(s string, bad *apierr.Error) (b, ok bool, err error) {
	if s == "" {
		return false, false, nil
	}
	switch strings.ToLower(s) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, false, bad
}

// Entry is one element N of a repeat list: its sub-keys and their values.
type Entry struct {
	N      int
	Fields map[string]string // sub-key -> value; Fields["" ] for plain lists (ResourceId.N)
	set    map[string]bool
}

// Get returns the first sub-key among names that was sent, and whether any was.
func (e Entry) Get(names ...string) (string, bool) {
	for _, n := range names {
		if e.set[n] {
			return e.Fields[n], true
		}
	}
	return "", false
}

// Bool decodes the element's sub-key as Values.Bool does.
func (e Entry) Bool(sub string, bad *apierr.Error) (b, ok bool, err error) {
	return parseBool(e.Fields[sub], bad)
}

// List returns the elements of the repeat list prefix ("Tag" for
// Tag.1.Key, Tag.1.Value, ...; "DiskId" for DiskId.1 ...), ordered by N.
// Elements whose N is not a positive integer are ignored.
func (p Values) List(prefix string) []Entry {
	byN := map[int]*Entry{}
	for key, vals := range p.v {
		if !strings.HasPrefix(key, prefix+".") || len(vals) == 0 {
			continue
		}
		rest := key[len(prefix)+1:]
		nStr, sub, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(nStr)
		if err != nil || n < 1 {
			continue
		}
		e := byN[n]
		if e == nil {
			e = &Entry{N: n, Fields: map[string]string{}, set: map[string]bool{}}
			byN[n] = e
		}
		e.Fields[sub] = vals[0]
		e.set[sub] = true
	}
	out := make([]Entry, 0, len(byN))
	for _, e := range byN {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out
}

// Strings returns the non-empty values of the plain repeat list prefix
// (DesktopId.1, DesktopId.2, ...), ordered by N.
func (p Values) Strings(prefix string) []string {
	var out []string
	for _, e := range p.List(prefix) {
		if v := e.Fields[""]; v != "" {
			out = append(out, v)
		}
	}
	return out
}

// JSONList decodes a parameter whose value is a JSON array of strings
// (SnapshotIds=["s-1","s-2"]). ok is false when the parameter is absent;
// an empty array gives ok with an empty, non-nil slice. A value that is not
// a JSON array of strings yields bad.
func (p Values) JSONList(name string, bad *apierr.Error) (list []string, ok bool, err error) {
	if !p.Has(name) || p.v.Get(name) == "" {
		return nil, false, nil
	}
	list = []string{}
	// JSON null decodes without an error into a nil slice, which filters
	// read as "no filter": refuse it like any other non-array.
	if err := json.Unmarshal([]byte(p.v.Get(name)), &list); err != nil || list == nil {
		return nil, false, bad
	}
	return list, true, nil
}

// Response is embedded in every response body; the edge fills RequestId.
type Response struct {
	RequestId string
}

// SetRequestID implements the edge's request-ID setter.
func (r *Response) SetRequestID(id string) { r.RequestId = id }
