package web

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mustserv/internal/config"
	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/probe"
	"mustserv/internal/stream"
)

// BenchmarkPages50k renders the pages and API answers of a library of
// 50,000 tracks (1,000 artists × 5 albums × 10 tracks) plus a flat folder
// of 10,000 files: every list is paginated, so each should cost about what
// it costs in a small library (go test -run ^$ -bench Pages50k).
func BenchmarkPages50k(b *testing.B) {
	ctx := b.Context()
	dir := b.TempDir()
	x, err := index.Open(ctx, filepath.Join(dir, "index.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { x.Close() })
	var batch index.Batch
	flush := func() {
		if err := x.Apply(ctx, &batch); err != nil {
			b.Fatal(err)
		}
		batch = index.Batch{}
	}
	for ar := range 1000 {
		for al := range 5 {
			for tr := range 10 {
				p := fmt.Sprintf("Artist %04d/Album %d/%02d Track.mp3", ar, al, tr+1)
				batch.Puts = append(batch.Puts, index.Record{Library: "Music", Path: p, Kind: "audio", Size: 4 << 20,
					ModTime: fixedTime, Hash: []byte(p), Report: &probe.Report{Container: "mp3", Duration: 200 + float64(tr),
						Tags: probe.Tags{Title: fmt.Sprintf("Song %d of album %d", tr+1, al), Artists: []string{fmt.Sprintf("Artist %04d", ar)},
							Album: fmt.Sprintf("Album %d of artist %04d", al, ar), AlbumArtists: []string{fmt.Sprintf("Artist %04d", ar)},
							Track: tr + 1, Year: 1970 + al}}})
			}
		}
		if len(batch.Puts) >= 5000 {
			flush()
		}
	}
	flush()
	if err := x.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	music := filepath.Join(dir, "music")
	albumDir := filepath.Join(music, "Artist 0500", "Album 2")
	flat := filepath.Join(music, "Flat")
	for _, d := range []string{albumDir, flat} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	for tr := range 10 {
		os.WriteFile(filepath.Join(albumDir, fmt.Sprintf("%02d Track.mp3", tr+1)), nil, 0o644)
	}
	for i := range 10000 {
		os.WriteFile(filepath.Join(flat, fmt.Sprintf("%05d.mp3", i)), nil, 0o644)
	}
	tree, err := library.Open([]config.Library{{Name: "Music", Path: music}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tree.Close() })
	srv := httptest.NewServer(New(Options{Tree: tree, Stream: stream.New(time.Minute), Index: x, Covers: &fakeCovers{x: x}}))
	b.Cleanup(srv.Close)
	albums, _, err := x.Albums(ctx, index.Page{Offset: 2500, Limit: 1})
	if err != nil || len(albums) == 0 {
		b.Fatal(err)
	}
	artists, _, err := x.Artists(ctx, index.Page{Offset: 500, Limit: 1})
	if err != nil || len(artists) == 0 {
		b.Fatal(err)
	}
	for _, target := range []string{
		"/", "/albums", "/albums?page=80", "/albums/" + albums[0].ID, "/artists", "/artists?page=9", "/artists/" + artists[0].ID,
		"/search?q=song", "/search?q=artist:0500", "/browse/Music/Artist%200500/Album%202/", "/browse/Music/Flat/", "/browse/Music/Flat/?page=20",
		"/api/albums/" + albums[0].ID, "/api/artists/" + artists[0].ID, "/api/albums?offset=4000", "/api/search?q=song&limit=500", "/api/browse/Music/Artist%200500/Album%202",
	} {
		b.Run(target, func(b *testing.B) {
			for b.Loop() {
				resp, err := http.Get(srv.URL + target)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("GET %s = %d", target, resp.StatusCode)
				}
			}
		})
	}
}
