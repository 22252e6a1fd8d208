package nbd

import (
	"encoding/binary"
	"errors"
	"io"
	"syscall"
)

// Magic numbers (proto.md, "Newstyle negotiation" and "Transmission").
const (
	nbdMagic       = 0x4e42444d41474943 // "NBDMAGIC"
	optMagic       = 0x49484156454f5054 // "IHAVEOPT"
	optReplyMagic  = 0x0003e889045565a9
	requestMagic   = 0x25609513
	simpleMagic    = 0x67446698
	structureMagic = 0x668e33ef
)

// Handshake flags (server) and client flags.
const (
	flagFixedNewstyle  = 1 << 0
	flagNoZeroes       = 1 << 1
	flagCFixedNewstyle = 1 << 0
	flagCNoZeroes      = 1 << 1
)

// Transmission flags.
const (
	flagHasFlags        = 1 << 0
	flagReadOnly        = 1 << 1
	flagSendFlush       = 1 << 2
	flagSendFUA         = 1 << 3
	flagSendTrim        = 1 << 5
	flagSendWriteZeroes = 1 << 6
	flagCanMultiConn    = 1 << 8
)

// Options.
const (
	optExportName      = 1
	optAbort           = 2
	optList            = 3
	optInfo            = 6
	optGo              = 7
	optStructuredReply = 8
	optListMetaContext = 9
	optSetMetaContext  = 10
)

// Option reply types.
const (
	repAck        = 1
	repServer     = 2
	repInfo       = 3
	repMetaCtx    = 4
	repFlagError  = 1 << 31
	repErrUnsup   = repFlagError + 1
	repErrInvalid = repFlagError + 3
	repErrUnknown = repFlagError + 6
	repErrShutdwn = repFlagError + 7
	repErrTooBig  = repFlagError + 9
)

// Information types for NBD_OPT_INFO and NBD_OPT_GO.
const (
	infoExport    = 0
	infoBlockSize = 3
)

// Commands.
const (
	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdTrim        = 4
	cmdWriteZeroes = 6
	cmdBlockStatus = 7
)

// Command flags.
const (
	cmdFlagFUA    = 1 << 0
	cmdFlagNoHole = 1 << 1
	cmdFlagReqOne = 1 << 3
)

// Structured reply flags and types.
const (
	replyFlagDone        = 1 << 0
	replyTypeNone        = 0
	replyTypeOffsetData  = 1
	replyTypeBlockStatus = 5
	replyTypeError       = 1<<15 + 1
)

// The base:allocation metadata context: its name, the ID it gets from
// NBD_OPT_SET_META_CONTEXT and its status flags.
const (
	metaBaseAllocation = "base:allocation"
	metaBaseAllocID    = 1
	stateHole          = 1 << 0
	stateZero          = 1 << 1
)

// Error values sent in replies.
const (
	errPerm  = 1
	errIO    = 5
	errInval = 22
	errNoSpc = 28
)

// Size constraints advertised with NBD_INFO_BLOCK_SIZE.
const (
	// MinBlockSize is the advertised minimum block size.
	MinBlockSize = 1
	// PreferredBlockSize is the advertised preferred block size.
	PreferredBlockSize = 4096
	// MaxPayload is the largest READ or WRITE length accepted.
	MaxPayload = 32 << 20
	// maxSanePayload is the WRITE length above which the server drops
	// the connection instead of discarding the payload.
	maxSanePayload = 64 << 20
	// maxOptionLen bounds option data kept in memory; longer options
	// are discarded and answered with NBD_REP_ERR_TOO_BIG.
	maxOptionLen = 64 << 10
	// maxNameLen is the longest string the protocol allows.
	maxNameLen = 4096
)

// Wire sizes.
const (
	requestLen     = 28
	simpleHdrLen   = 16
	structHdrLen   = 20
	offsetDataLen  = structHdrLen + 8
	optionHdrLen   = 16
	optReplyHdrLen = 20
)

var be = binary.BigEndian

// request is one transmission request header.
type request struct {
	flags  uint16
	typ    uint16
	cookie uint64
	offset uint64
	length uint32
}

func parseRequest(b []byte) (request, bool) {
	if be.Uint32(b[0:4]) != requestMagic {
		return request{}, false
	}
	return request{
		flags:  be.Uint16(b[4:6]),
		typ:    be.Uint16(b[6:8]),
		cookie: be.Uint64(b[8:16]),
		offset: be.Uint64(b[16:24]),
		length: be.Uint32(b[24:28]),
	}, true
}

// putOptReply fills an option reply header into b[:optReplyHdrLen].
func putOptReply(b []byte, opt, typ uint32, length int) {
	be.PutUint64(b[0:8], optReplyMagic)
	be.PutUint32(b[8:12], opt)
	be.PutUint32(b[12:16], typ)
	be.PutUint32(b[16:20], uint32(length))
}

// putSimple fills a simple reply header into b[:simpleHdrLen].
func putSimple(b []byte, errno uint32, cookie uint64) {
	be.PutUint32(b[0:4], simpleMagic)
	be.PutUint32(b[4:8], errno)
	be.PutUint64(b[8:16], cookie)
}

// putStructured fills a structured reply chunk header into b[:structHdrLen].
func putStructured(b []byte, flags, typ uint16, cookie uint64, length int) {
	be.PutUint32(b[0:4], structureMagic)
	be.PutUint16(b[4:6], flags)
	be.PutUint16(b[6:8], typ)
	be.PutUint64(b[8:16], cookie)
	be.PutUint32(b[16:20], uint32(length))
}

// deviceErrno maps a Device error to an NBD error value.
func deviceErrno(err error) uint32 {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT), errors.Is(err, syscall.EFBIG):
		return errNoSpc
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EPERM):
		return errPerm
	}
	return errIO
}

// discard reads and drops n bytes of r.
func discard(r io.Reader, n int64) error {
	_, err := io.CopyN(io.Discard, r, n)
	return err
}
