package registry

import (
	"encoding/json"
	"net/http"
)

// regError is an error of the distribution API: an HTTP status and one
// entry of the {"errors":[{code,message}]} body.
type regError struct {
	status  int
	code    string
	message string
}

func (e *regError) write(w http.ResponseWriter) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]any{{"code": e.code, "message": e.message}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(e.status)
	w.Write(body)
}

// with returns a copy with another message.
func (e *regError) with(msg string) *regError {
	c := *e
	c.message = msg
	return &c
}

// The error codes of the distribution specification.
var (
	errBlobUnknown         = &regError{http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown to registry"}
	errBlobUploadUnknown   = &regError{http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry"}
	errBlobUploadInvalid   = &regError{http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "blob upload invalid"}
	errDigestInvalid       = &regError{http.StatusBadRequest, "DIGEST_INVALID", "provided digest did not match uploaded content"}
	errManifestUnknown     = &regError{http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown"}
	errManifestInvalid     = &regError{http.StatusBadRequest, "MANIFEST_INVALID", "manifest invalid"}
	errManifestBlobUnknown = &regError{http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "manifest references a blob unknown to the registry"}
	errNameInvalid         = &regError{http.StatusBadRequest, "NAME_INVALID", "invalid repository name"}
	errNameUnknown         = &regError{http.StatusNotFound, "NAME_UNKNOWN", "repository name not known to registry"}
	errTagInvalid          = &regError{http.StatusBadRequest, "TAG_INVALID", "manifest tag did not match URI"}
	errSizeInvalid         = &regError{http.StatusBadRequest, "SIZE_INVALID", "manifest too large"}
	errRangeInvalid        = &regError{http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "range does not continue the upload"}
	errUnauthorized        = &regError{http.StatusUnauthorized, "UNAUTHORIZED", "authentication required"}
	errUnsupported         = &regError{http.StatusMethodNotAllowed, "UNSUPPORTED", "the operation is unsupported"}
	errNotFound            = &regError{http.StatusNotFound, "NOT_FOUND", "not found"}
	errInternal            = &regError{http.StatusInternalServerError, "UNKNOWN", "internal error"}
)
