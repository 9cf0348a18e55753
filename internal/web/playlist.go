package web

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"mustserv/internal/library"
	"mustserv/internal/media"
)

// playlistFormats maps a playlist extension to its writer; the content type
// comes from the media table, like every file's.
var playlistFormats = map[string]func(*bytes.Buffer, []track){
	".m3u8": writeM3U8,
	".pls":  writePLS,
	".xspf": writeXSPF,
}

// track is one entry of a playlist.
type track struct {
	Title string
	URL   string
}

// maxPlaylistItems caps a playlist; a larger folder is cut at this length
// (a player would not load more in one go anyway).
const maxPlaylistItems = 10000

// handlePlaylist serves /playlist/<virtual path>.<m3u8|pls|xspf>: every
// playable file at or below the path (a folder, recursively, or one file),
// with absolute stream URLs as the client reaches this server.
func handlePlaylist(tree *library.Tree, p proxies, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vpath := r.PathValue("path")
		ext := path.Ext(vpath)
		write, ok := playlistFormats[ext]
		if !ok {
			writeError(w, r, log, fmt.Errorf("%w: playlist must end in .m3u8, .pls or .xspf", errBadRequest))
			return
		}
		vpath = strings.TrimSuffix(vpath, ext)
		base := p.base(r) + "/stream/"
		var tracks []track
		err := tree.Walk(r.Context(), vpath, library.WalkLimits{MaxItems: maxPlaylistItems}, func(e library.Entry) error {
			tracks = append(tracks, track{Title: strings.TrimSuffix(e.Name, path.Ext(e.Name)), URL: base + escapePath(e.Path)})
			return nil
		})
		if errors.Is(err, library.ErrTooMany) {
			log.Warn("playlist cut", "path", vpath, "items", len(tracks))
			err = nil
		}
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		var buf bytes.Buffer
		write(&buf, tracks)
		name := path.Base(vpath) + ext
		_, ctype := media.TypeOf(ext)
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes())
	})
}

// oneLine keeps a title from breaking line-based formats.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// writeM3U8 writes an extended M3U playlist (UTF-8 by definition of .m3u8).
func writeM3U8(b *bytes.Buffer, tracks []track) {
	b.WriteString("#EXTM3U\n")
	for _, t := range tracks {
		fmt.Fprintf(b, "#EXTINF:-1,%s\n%s\n", oneLine(t.Title), t.URL)
	}
}

// writePLS writes a PLS (version 2) playlist.
func writePLS(b *bytes.Buffer, tracks []track) {
	b.WriteString("[playlist]\n")
	for i, t := range tracks {
		fmt.Fprintf(b, "File%d=%s\nTitle%d=%s\nLength%d=-1\n", i+1, t.URL, i+1, oneLine(t.Title), i+1)
	}
	fmt.Fprintf(b, "NumberOfEntries=%d\nVersion=2\n", len(tracks))
}

// writeXSPF writes an XSPF (XML Shareable Playlist Format) version 1 list.
func writeXSPF(b *bytes.Buffer, tracks []track) {
	b.WriteString(xml.Header)
	b.WriteString(`<playlist version="1" xmlns="http://xspf.org/ns/0/">` + "\n<trackList>\n")
	for _, t := range tracks {
		b.WriteString("<track><location>")
		xml.EscapeText(b, []byte(t.URL))
		b.WriteString("</location><title>")
		xml.EscapeText(b, []byte(oneLine(t.Title)))
		b.WriteString("</title></track>\n")
	}
	b.WriteString("</trackList>\n</playlist>\n")
}
