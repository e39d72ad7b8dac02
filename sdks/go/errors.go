package konorkestra

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by every method called after Client.Close.
	ErrClosed = errors.New("konorkestra: client closed")

	// ErrNotFound matches (with errors.Is) an agent's not_found answer: the
	// group has no committed release on this node, or is outside its scope.
	ErrNotFound = errors.New("konorkestra: no committed release")

	// ErrUnavailable means the agent cannot be reached and, for reads, no
	// release of the group is on disk either.
	ErrUnavailable = errors.New("konorkestra: agent unavailable")
)

// ProtocolError is an error answer from the agent (docs/reference/protocol.md,
// "Error codes"). errors.Is(err, ErrNotFound) holds for code "not_found".
type ProtocolError struct {
	Code    string // "bad_request", "not_found", "forbidden", ...
	Message string // human-readable, not part of the protocol
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("konorkestra: agent answered %s: %s", e.Code, e.Message)
}

// Is reports whether e is the not_found error.
func (e *ProtocolError) Is(target error) bool {
	return target == ErrNotFound && e.Code == "not_found"
}
