package web

import (
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
	if code >= 500 {
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
	}
	return http.StatusInternalServerError
}

var errBadRequest = errors.New("bad request")
