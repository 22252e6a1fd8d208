package dsw

import (
	"errors"
	"fmt"

	"github.com/snapstack/snapstack/internal/apierr"
	"github.com/snapstack/snapstack/internal/meta"
)

// The error codes of PAI-DSW. Its documents publish two codes:
// ValidationError (a parameter is wrong; HttpStatusCode 400, or 404 when
// it names a resource that does not exist) and InternalError (anything
// else, 500). Messages say which parameter and why.

// CodeValidation is the code of every client error.
const CodeValidation = "ValidationError"

// invalid reports a bad parameter (400).
func invalid(format string, a ...any) *apierr.Error {
	return apierr.New(CodeValidation, 400, fmt.Sprintf(format, a...))
}

// instanceNotFound reports an unknown (or another account's) instance.
func instanceNotFound(id string) *apierr.Error {
	return apierr.New(CodeValidation, 404, fmt.Sprintf("The instance %q does not exist.", id))
}

// snapshotNotFound reports an unknown snapshot of an instance.
func snapshotNotFound(instanceID, id string) *apierr.Error {
	return apierr.New(CodeValidation, 404, fmt.Sprintf("The snapshot %q of instance %q does not exist.", id, instanceID))
}

// wrap turns an error into an API error: *apierr.Error passes, the rest
// becomes InternalError with the cause kept for the log only.
func wrap(err error) error {
	if err == nil || apierr.As(err) != nil {
		return err
	}
	return apierr.Internal(err)
}

// notFound maps meta.ErrNotFound to e, other errors through wrap.
func notFound(err error, e *apierr.Error) error {
	if errors.Is(err, meta.ErrNotFound) {
		return e
	}
	return wrap(err)
}

// Reason codes of a Failed snapshot (ReasonCode); ReasonMessage says more.
const (
	ReasonLayer       = "SaveFailed"          // the instance directory could not be read
	ReasonBaseImage   = "BaseImagePullFailed" // the instance's image could not be pulled
	ReasonTagExists   = "ImageTagExists"      // the tag appeared and Overwrite is false
	ReasonDenied      = "RegistryAccessDenied"
	ReasonPush        = "PushFailed"
	ReasonInterrupted = "Interrupted" // the service stopped while the snapshot was under way
	ReasonInternal    = "InternalError"
)
