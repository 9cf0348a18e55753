package web

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"mustserv/internal/library"
)

// originEntry is one entry of a folder listing in nginx's JSON autoindex
// format ("autoindex_format json"), which another MuStServ's http
// storage backend reads: so that one server can be a library of another.
type originEntry struct {
	Name  string `json:"name"`
	Type  string `json:"type"` // "directory" or "file"
	MTime string `json:"mtime"`
	Size  *int64 `json:"size,omitempty"`
}

// serveFolder answers a GET or HEAD of /stream/<folder>/ with the
// folder's listing, as nginx's JSON autoindex: its folders and files as
// the tree lists them (dotfiles only where the library shows them), times
// in whole seconds as Last-Modified has them.
func (h *streamHandler) serveFolder(w http.ResponseWriter, r *http.Request, vpath string) {
	entries, err := h.tree.ReadDir(r.Context(), strings.TrimSuffix(vpath, "/"))
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	out := make([]originEntry, 0, len(entries))
	for _, e := range entries {
		if !utf8.ValidString(e.Name) {
			// JSON would carry it as U+FFFD: a name the other server
			// could not ask for (and two such names could merge).
			continue
		}
		oe := originEntry{Name: e.Name, Type: "directory", MTime: httpTime(e.ModTime)}
		if !e.IsDir {
			oe.Type = "file"
			size := e.Size
			oe.Size = &size
		}
		out = append(out, oe)
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, r, h.log, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b)
}

func httpTime(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// folderRedirect answers a stream request for a folder without its
// trailing slash as nginx does: a redirect to the folder's URL. It
// reports false (nothing written) when vpath is not a folder.
func (h *streamHandler) folderRedirect(w http.ResponseWriter, r *http.Request, vpath string, openErr error) bool {
	if !errors.Is(openErr, fs.ErrNotExist) || errors.Is(openErr, library.ErrBadPath) {
		return false
	}
	if lib, _, _ := strings.Cut(vpath, "/"); h.tree.Remote(lib) {
		// A missing name of a library on another server costs it no
		// second request (its folders are asked for with their slash).
		return false
	}
	fi, err := h.tree.Stat(r.Context(), vpath)
	if err != nil || !fi.IsDir() {
		return false
	}
	target := "/stream/" + escapePath(vpath) + "/"
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, target, http.StatusMovedPermanently)
	return true
}
