package ecs

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
	"github.com/snapstack/snapstack/internal/param"
)

// paging is the "Both" pagination of spec/actions.md 0.2: PageNumber/
// PageSize, or NextToken/MaxResults (which win when given).
type paging struct {
	meta.Page
	Number, Size int
	token        bool
}

// pagingLimits are the bounds of one action's MaxResults.
type pagingLimits struct {
	min, max, def int
	clamp         bool // out-of-range MaxResults is clamped instead of rejected
}

func parsePaging(p param.Values, lim pagingLimits) (paging, error) {
	pg := paging{Number: 1, Size: 10}
	tok := p.String("NextToken")
	max, hasMax, err := p.Int("MaxResults", apierr.InvalidMaxResults)
	if err != nil {
		return pg, err
	}
	if tok != "" || hasMax {
		// Token mode: PageNumber and PageSize are ignored (spec 0.2).
		pg.token = true
		size := lim.def
		if hasMax {
			size = int(max)
			if size < lim.min || size > lim.max {
				if !lim.clamp {
					return pg, apierr.InvalidMaxResults
				}
				size = min(max64(size, lim.min), lim.max)
			}
		}
		off := 0
		if tok != "" {
			if off, err = decodeToken(tok); err != nil {
				return pg, err
			}
		}
		pg.Offset, pg.Limit, pg.Size = off, size, size
		return pg, nil
	}
	if n, ok, err := p.Int("PageNumber", apierr.InvalidPageNumber); err != nil {
		return pg, err
	} else if ok {
		if n < 1 {
			return pg, apierr.InvalidPageNumber
		}
		pg.Number = int(n)
	}
	if n, ok, err := p.Int("PageSize", apierr.InvalidPageSize); err != nil {
		return pg, err
	} else if ok {
		if n < 1 || n > 100 {
			return pg, apierr.InvalidPageSize
		}
		pg.Size = int(n)
	}
	// A huge PageNumber selects an empty page (the offset must not wrap).
	pg.Offset, pg.Limit = (min(pg.Number, 1<<30)-1)*pg.Size, pg.Size
	return pg, nil
}

func max64(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// next returns the NextToken after a page of n items out of total, "" on
// the last page.
func (pg paging) next(n, total int) string {
	end := pg.Offset + n
	if end >= total || n == 0 {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte("o:" + strconv.Itoa(end)))
}

func decodeToken(tok string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), "o:") {
		return 0, apierr.InvalidNextToken
	}
	n, err := strconv.Atoi(string(b[2:]))
	if err != nil || n < 0 {
		return 0, apierr.InvalidNextToken
	}
	return n, nil
}
