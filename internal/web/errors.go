package web

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"

	"mustserv/internal/auth"
	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/storage"
)

// writeError is the one place where errors become status codes. The body
// never carries err's text: it may name paths on disk.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := statusOf(err)
	logFailure(r, log, code, err)
	msg := http.StatusText(code)
	if code == http.StatusBadGateway || code == http.StatusGatewayTimeout {
		msg = clientMessage(err, code)
	}
	if ae := (*authError)(nil); errors.As(err, &ae) {
		msg = ae.msg
	}
	http.Error(w, msg, code)
}

// logFailure logs what a client is not told: a 5xx's error.
func logFailure(r *http.Request, log *slog.Logger, code int, err error) {
	// A cancelled request is a client that went away (or a server that
	// is shutting down), not a failure to log.
	if code >= 500 && !errors.Is(err, context.Canceled) {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
}

func statusOf(err error) int {
	var qe *index.QueryError
	var ae *authError
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.Is(err, auth.ErrLastUser):
		return http.StatusConflict
	case errors.Is(err, library.ErrBadPath), errors.Is(err, fs.ErrInvalid), errors.Is(err, errBadRequest), errors.As(err, &qe):
		return http.StatusBadRequest
	case errors.Is(err, storage.ErrTimeout):
		return http.StatusGatewayTimeout // a remote library's storage did not answer in time
	case errors.Is(err, storage.ErrUnavailable):
		return http.StatusBadGateway // it cannot be reached, or answered nonsense
	case errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	case errors.Is(err, errNoIndex), errors.Is(err, errNoScanner), errors.Is(err, errNoCovers), errors.Is(err, auth.ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// clientMessage is what the JSON API tells the client about err, given
// its status: the words written for the client (a bad parameter, a
// query's mistake, a missing collaborator) and otherwise the status text,
// never err.Error(), which may name paths on disk or SQL.
func clientMessage(err error, code int) string {
	var qe *index.QueryError
	var ue *userError
	var ae *authError
	switch {
	case errors.As(err, &ae):
		return ae.msg
	case errors.As(err, &qe):
		return qe.Msg
	case errors.As(err, &ue):
		return ue.msg
	case errors.Is(err, errNoIndex):
		return errNoIndex.Error()
	case errors.Is(err, errNoScanner):
		return errNoScanner.Error()
	case errors.Is(err, errNoCovers):
		return errNoCovers.Error()
	case code == http.StatusNotFound:
		return "not found"
	case code == http.StatusBadGateway:
		return "the library's storage cannot be reached"
	case code == http.StatusGatewayTimeout:
		return "the library's storage did not answer in time"
	}
	return http.StatusText(code)
}

var errBadRequest = errors.New("bad request")

// userError is a client's mistake with a message written for the client
// (a bad limit, a missing parameter). It is a bad request.
type userError struct{ msg string }

func (e *userError) Error() string        { return e.msg }
func (e *userError) Is(target error) bool { return target == errBadRequest }

func badParam(msg string) error { return &userError{msg: msg} }

// The collaborators the server may run without: their routes answer 503
// until run.go passes them (the index opens after the listener, and a
// server may run with no index at all).
var (
	errNoIndex   = errors.New("index not ready")
	errNoScanner = errors.New("scanner not available")
	errNoCovers  = errors.New("covers not available")
)
