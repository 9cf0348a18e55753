package web

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"

	"mustserv/internal/library"
)

// writeError is the one place where errors become status codes. The body
// never carries err's text: it may name paths on disk.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := statusOf(err)
	// A cancelled request is a client that went away (or a server that
	// is shutting down), not a failure to log.
	if code >= 500 && !errors.Is(err, context.Canceled) {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	http.Error(w, http.StatusText(code), code)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, library.ErrBadPath), errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

var errBadRequest = errors.New("bad request")
