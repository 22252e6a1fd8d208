package nbd

import (
	"fmt"
	"strings"
)

// Extenter is an optional interface of a Device that knows which of its
// ranges are unallocated or read as zeroes. NBD_CMD_BLOCK_STATUS in the
// base:allocation context reports what it says, so that clients (qemu-img,
// nbdcopy) skip holes; a Device without it is reported as allocated data
// throughout.
type Extenter interface {
	// Extents describes [off, off+length) as consecutive extents starting
	// at off, in order: fn(n, hole, zero) for each, with n > 0. hole
	// means the n bytes are not allocated (a write may allocate, or fail
	// with ENOSPC); zero means they read as zeroes. All false is always
	// correct (allocated data). It returns when fn returns false or the
	// extents cover length bytes, and may return earlier: the reply then
	// covers less than asked, which the protocol allows. An extent
	// reaching past off+length is clipped. Extents must be cheap (no data
	// read), safe for concurrent use with the other methods, and call fn
	// only before it returns. An error fails the request as a Device
	// error does.
	Extents(off, length int64, fn func(n int64, hole, zero bool) bool) error
}

// maxStatusExtents bounds the descriptors of one BLOCK_STATUS reply (32 KiB
// of payload); a client asks again from where a reply ended.
const maxStatusExtents = 4096

// metaOption handles NBD_OPT_LIST_META_CONTEXT and
// NBD_OPT_SET_META_CONTEXT. The only context is base:allocation, offered
// for every export: LIST returns it for no query, "base:" or
// "base:allocation"; SET selects it for "base:allocation" ("base:" and
// other namespaces select nothing) and binds the selection to the export
// named.
func (c *conn) metaOption(opt uint32, data []byte) error {
	if opt == optSetMetaContext {
		// Every SET replaces the selection, even one that fails.
		c.metaSet, c.metaExport = false, ""
		if !c.structured {
			return c.optReply(opt, repErrInvalid, []byte("NBD_OPT_SET_META_CONTEXT needs structured replies"))
		}
	}
	name, queries, err := parseMetaQueries(data)
	if err != nil {
		return c.optReply(opt, repErrInvalid, []byte(err.Error()))
	}
	ex, rep := c.open(name)
	if rep != 0 {
		return c.optReply(opt, rep, []byte("export not available"))
	}
	ex.release()
	match := false
	for _, q := range queries {
		match = match || q == metaBaseAllocation || opt == optListMetaContext && q == "base:"
	}
	if opt == optListMetaContext && len(queries) == 0 {
		match = true
	}
	if match {
		var id uint32 // reserved in LIST replies
		if opt == optSetMetaContext {
			id = metaBaseAllocID
		}
		d := be.AppendUint32(nil, id)
		if err := c.optReply(opt, repMetaCtx, append(d, metaBaseAllocation...)); err != nil {
			return err
		}
	}
	if err := c.optReply(opt, repAck, nil); err != nil {
		return err
	}
	if opt == optSetMetaContext && match {
		c.metaSet, c.metaExport = true, name
	}
	return nil
}

// parseMetaQueries parses the data of a meta context option: an export
// name and queries, each of which must start with a namespace and a colon.
func parseMetaQueries(data []byte) (name string, queries []string, err error) {
	str := func(what string) (string, error) {
		if len(data) < 4 {
			return "", fmt.Errorf("%s truncated", what)
		}
		n := uint64(be.Uint32(data))
		if n > uint64(len(data)-4) {
			return "", fmt.Errorf("bad %s length", what)
		}
		if n > maxNameLen {
			return "", fmt.Errorf("%s too long", what)
		}
		s := string(data[4 : 4+n])
		data = data[4+n:]
		return s, nil
	}
	if name, err = str("export name"); err != nil {
		return "", nil, err
	}
	if len(data) < 4 {
		return "", nil, fmt.Errorf("query count missing")
	}
	nq := be.Uint32(data)
	data = data[4:]
	if uint64(nq) > uint64(len(data)/4) {
		return "", nil, fmt.Errorf("bad query count")
	}
	for range nq {
		q, err := str("query")
		if err != nil {
			return "", nil, err
		}
		if strings.IndexByte(q, ':') <= 0 {
			return "", nil, fmt.Errorf("query %q lacks a namespace", q)
		}
		queries = append(queries, q)
	}
	if len(data) != 0 {
		return "", nil, fmt.Errorf("data after the queries")
	}
	return name, queries, nil
}

// blockStatus executes a BLOCK_STATUS and returns its reply: one
// NBD_REPLY_TYPE_BLOCK_STATUS chunk of at most maxStatusExtents
// descriptors (one with NBD_CMD_FLAG_REQ_ONE) that cover the request from
// its offset, or less of it, never more.
func (c *conn) blockStatus(ex *export, req request) (b []byte, pooled bool) {
	if !ex.meta || req.flags&^(cmdFlagFUA|cmdFlagReqOne) != 0 || req.length == 0 || !ex.inRange(req) {
		return c.errorReply(req.cookie, errInval), false
	}
	limit := maxStatusExtents
	if req.flags&cmdFlagReqOne != 0 {
		limit = 1
	}
	const hdr = structHdrLen + 4
	buf := c.s.bufs.get(hdr + 8*limit)
	var (
		n       int                 // descriptors
		left    = int64(req.length) // bytes not yet described
		dlen    int64               // length of descriptor n-1
		dstatus uint32              // status of descriptor n-1
	)
	add := func(length int64, hole, zero bool) bool {
		if length <= 0 || left <= 0 {
			return false
		}
		length = min(length, left)
		var status uint32
		if hole {
			status |= stateHole
		}
		if zero {
			status |= stateZero
		}
		switch {
		case n > 0 && status == dstatus:
			dlen += length
		case n == limit:
			return false
		default:
			if n > 0 {
				be.PutUint32(buf[hdr+8*(n-1):], uint32(dlen))
			}
			n++
			dlen, dstatus = length, status
			be.PutUint32(buf[hdr+8*(n-1)+4:], status)
		}
		left -= length
		return left > 0
	}
	if d, ok := ex.dev.(Extenter); ok {
		if err := d.Extents(int64(req.offset), int64(req.length), add); err != nil {
			c.log.Warn("nbd: device error", "export", ex.name, "cmd", req.typ, "offset", req.offset, "length", req.length, "err", err)
			c.s.bufs.put(buf)
			return c.errorReply(req.cookie, deviceErrno(err)), false
		}
	}
	if n == 0 {
		add(left, false, false) // nothing known: allocated data
	}
	be.PutUint32(buf[hdr+8*(n-1):], uint32(dlen))
	putStructured(buf, replyFlagDone, replyTypeBlockStatus, req.cookie, 4+8*n)
	be.PutUint32(buf[structHdrLen:], metaBaseAllocID)
	return buf[:hdr+8*n], true
}
