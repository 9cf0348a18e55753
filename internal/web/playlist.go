package web

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
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

// track is one entry of a playlist. Folder playlists know the title and
// URL only; index playlists also know the rest.
type track struct {
	Title   string
	URL     string
	Seconds int    // 0: unknown
	Creator string // the artists
	Album   string
}

// length is the track's length as M3U and PLS want it: -1 when unknown.
func (t track) length() int {
	if t.Seconds <= 0 {
		return -1
	}
	return t.Seconds
}

// display is the line players show: "Artist - Title" when the artist is
// known, as EXTINF lines conventionally say it.
func (t track) display() string {
	if t.Creator == "" {
		return oneLine(t.Title)
	}
	return oneLine(t.Creator + " - " + t.Title)
}

// maxPlaylistItems caps a playlist; a larger folder is cut at this length
// (a player would not load more in one go anyway).
const maxPlaylistItems = 10000

// handlePlaylist serves /playlist/<virtual path>.<m3u8|pls|xspf>: every
// playable file at or below the path (a folder, recursively, or one file),
// with absolute stream URLs as the client reaches this server, signed for
// the viewer (Server.signTracks).
func (s *Server) handlePlaylist() http.Handler {
	tree, p, log := s.opts.Tree, s.proxies, s.opts.Logger
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
		if err == nil {
			err = s.signTracks(r, tracks)
		}
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		servePlaylist(w, path.Base(vpath)+ext, write, tracks)
	})
}

// servePlaylist writes tracks as a download called name.
func servePlaylist(w http.ResponseWriter, name string, write func(*bytes.Buffer, []track), tracks []track) {
	var buf bytes.Buffer
	write(&buf, tracks)
	_, ctype := media.TypeOf(name)
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Write(buf.Bytes())
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
		fmt.Fprintf(b, "#EXTINF:%d,%s\n%s\n", t.length(), t.display(), t.URL)
	}
}

// writePLS writes a PLS (version 2) playlist.
func writePLS(b *bytes.Buffer, tracks []track) {
	b.WriteString("[playlist]\n")
	for i, t := range tracks {
		fmt.Fprintf(b, "File%d=%s\nTitle%d=%s\nLength%d=%d\n", i+1, t.URL, i+1, t.display(), i+1, t.length())
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
		b.WriteString("</title>")
		// XSPF's order: location, title, creator, album, duration (ms).
		if t.Creator != "" {
			b.WriteString("<creator>")
			xml.EscapeText(b, []byte(oneLine(t.Creator)))
			b.WriteString("</creator>")
		}
		if t.Album != "" {
			b.WriteString("<album>")
			xml.EscapeText(b, []byte(oneLine(t.Album)))
			b.WriteString("</album>")
		}
		if t.Seconds > 0 {
			fmt.Fprintf(b, "<duration>%d</duration>", t.Seconds*1000)
		}
		b.WriteString("</track>\n")
	}
	b.WriteString("</trackList>\n</playlist>\n")
}
