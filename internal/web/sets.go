package web

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strings"

	"mustserv/internal/index"
)

// Sets of index items that are played or downloaded as a whole: an
// album, an artist, a search's results. Folder playlists (playlist.go)
// walk the disk instead and work without an index.

// artistTracks returns an artist with its albums and at most limit of its
// tracks (index.ArtistItems: album by album, then those on no album).
func artistTracks(ctx context.Context, x *index.Index, id string, limit int) (index.Artist, []index.Album, []index.Item, error) {
	a, albums, _, err := x.Artist(ctx, id)
	if err != nil {
		return a, nil, nil, err
	}
	its, err := x.ArtistItems(ctx, id, limit)
	if err != nil {
		return a, nil, nil, err
	}
	return a, albums, its, nil
}

// trackOf is an item as a playlist entry, with an absolute URL.
func trackOf(it index.Item, base string, l links) track {
	return track{
		Title:   itemTitle(it),
		URL:     base + l.stream(it.Library, it.Path),
		Seconds: int(math.Round(it.Duration)),
		Creator: strings.Join(it.Artists, ", "),
		Album:   it.Album,
	}
}

// itemTitle is an item's title tag, or its file name without extension.
func itemTitle(it index.Item) string {
	if it.Title != "" {
		return it.Title
	}
	return strings.TrimSuffix(it.Name, path.Ext(it.Name))
}

// fileName makes a download name of a title: no path separators or
// control characters, which browsers would mangle or refuse.
func fileName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, strings.ToValidUTF8(s, "_"))
	if strings.TrimSpace(s) == "" {
		return "playlist"
	}
	return s
}

// itemSet is what a set playlist lists: a download name (no extension)
// and the items.
type itemSet func(r *http.Request, x *index.Index) (name string, items []index.Item, err error)

// handleSetPlaylist serves the playlist of a set of index items; the
// route's {file} must be playlist.m3u8, playlist.pls or playlist.xspf.
// Its tracks carry signed links for the viewer (Server.signTracks).
func (s *Server) handleSetPlaylist(set itemSet) http.Handler {
	x, p, l, log := s.opts.Index, s.proxies, s.links, s.opts.Logger
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		file := r.PathValue("file")
		ext := path.Ext(file)
		write, ok := playlistFormats[ext]
		if !ok || strings.TrimSuffix(file, ext) != "playlist" {
			writeError(w, r, log, fmt.Errorf("no such playlist %q: %w", file, fs.ErrNotExist))
			return
		}
		if x == nil {
			writeError(w, r, log, errNoIndex)
			return
		}
		name, items, err := set(r, x)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		base := p.base(r)
		tracks := make([]track, len(items))
		for i, it := range items {
			tracks[i] = trackOf(it, base, l)
		}
		if err := s.signTracks(r, tracks); err != nil {
			writeError(w, r, log, err)
			return
		}
		servePlaylist(w, fileName(name)+ext, write, tracks)
	})
}

func albumSet(r *http.Request, x *index.Index) (string, []index.Item, error) {
	a, its, err := x.Album(r.Context(), r.PathValue("id"))
	if err != nil {
		return "", nil, err
	}
	if len(its) > maxPlaylistItems {
		its = its[:maxPlaylistItems]
	}
	return a.Name, its, nil
}

func artistSet(r *http.Request, x *index.Index) (string, []index.Item, error) {
	a, _, its, err := artistTracks(r.Context(), x, r.PathValue("id"), maxPlaylistItems)
	return a.Name, its, err
}

// searchSet is one page of a search's items, 500 by default (the most
// the index gives at once): ?q=, ?limit=, ?offset= as for /api/search.
func searchSet(r *http.Request, x *index.Index) (string, []index.Item, error) {
	qv := r.URL.Query()
	q, err := queryOf(qv)
	if err != nil {
		return "", nil, err
	}
	p, err := pageOf(qv, maxLimit)
	if err != nil {
		return "", nil, err
	}
	res, err := x.Search(r.Context(), q, p)
	if err != nil {
		return "", nil, err
	}
	return "search " + q, res.Items, nil
}
