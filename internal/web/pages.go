package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"mustserv/internal/library"
	"mustserv/internal/media"
)

//go:embed ui/*.html
var templates embed.FS

// pages renders the server-side HTML.
type pages struct {
	browse *template.Template
}

func newPages() *pages {
	funcs := template.FuncMap{"size": humanSize}
	return &pages{browse: template.Must(template.New("browse.html").Funcs(funcs).ParseFS(templates, "ui/browse.html"))}
}

// crumb is one link of the breadcrumb trail.
type crumb struct {
	Name, Href string
}

// row is one line of a folder listing.
type row struct {
	Name     string
	Href     string // browse link for folders, stream link for files
	Stream   string // stream URL (files)
	Playlist string // M3U8 of the folder or file
	IsDir    bool
	Kind     string
	Size     int64
}

type browseData struct {
	Title     string
	Crumbs    []crumb
	Rows      []row
	Playlists map[string]string // format → URL of this folder's playlist
	Root      bool
}

// securityHeaders are set on every page: no inline script, no framing.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

// handleBrowse lists the libraries (at / and /browse/) or a folder.
func handleBrowse(tree *library.Tree, p *pages, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vpath := strings.TrimSuffix(r.PathValue("path"), "/")
		data := browseData{Title: "Libraries", Crumbs: []crumb{{"Libraries", "/browse/"}}}
		if vpath == "" {
			data.Root = true
			for _, name := range tree.Names() {
				data.Rows = append(data.Rows, row{Name: name, Href: "/browse/" + escapePath(name) + "/", IsDir: true, Kind: "folder",
					Playlist: "/playlist/" + escapePath(name) + ".m3u8"})
			}
		} else {
			fi, err := tree.Stat(vpath)
			if err != nil {
				writeError(w, r, log, err)
				return
			}
			if !fi.IsDir() {
				http.Redirect(w, r, "/stream/"+escapePath(vpath), http.StatusFound)
				return
			}
			entries, err := tree.ReadDir(vpath)
			if err != nil {
				writeError(w, r, log, err)
				return
			}
			segs := strings.Split(vpath, "/")
			for i := range segs {
				data.Crumbs = append(data.Crumbs, crumb{segs[i], "/browse/" + escapePath(strings.Join(segs[:i+1], "/")) + "/"})
			}
			data.Title = segs[len(segs)-1]
			esc := escapePath(vpath)
			data.Playlists = map[string]string{"M3U8": "/playlist/" + esc + ".m3u8", "PLS": "/playlist/" + esc + ".pls", "XSPF": "/playlist/" + esc + ".xspf"}
			for _, e := range entries {
				ep := escapePath(e.Path)
				rw := row{Name: e.Name, IsDir: e.IsDir, Kind: e.Kind.String(), Size: e.Size, Playlist: "/playlist/" + ep + ".m3u8"}
				if e.IsDir {
					rw.Href = "/browse/" + ep + "/"
					rw.Kind = "folder"
				} else {
					rw.Href = "/stream/" + ep
					rw.Stream = rw.Href
					if e.Kind != media.Audio && e.Kind != media.Video {
						rw.Playlist = ""
					}
				}
				data.Rows = append(data.Rows, rw)
			}
		}
		var buf bytes.Buffer
		if err := p.browse.Execute(&buf, data); err != nil {
			writeError(w, r, log, fmt.Errorf("render: %w", err))
			return
		}
		h := w.Header()
		securityHeaders(h)
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
	})
}

// humanSize formats a byte count for people: 1.5 MB.
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + string("kMGTPE"[exp]) + "B"
}
