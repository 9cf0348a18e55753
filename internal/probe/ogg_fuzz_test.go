package probe

import (
	"bytes"
	"context"
	"testing"
)

// FuzzOgg: run for a minute with
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -fuzz=FuzzOgg -fuzztime=60s ./internal/probe/
func FuzzOgg(f *testing.F) {
	xiphFuzzSeeds(f, "testdata/ogg/*")
	f.Add(opusFile([]byte("OpusTags\x00\x00\x00\x00\x01\x00\x00\x00\x0a\x00\x00\x00TITLE=Tiny")))
	f.Fuzz(func(t *testing.T, file []byte) {
		rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.ogg", Options{})
		xiphCheckReport(t, file, rep, err)
	})
}

// FuzzVorbisComment: run for a minute with
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -fuzz=FuzzVorbisComment -fuzztime=60s ./internal/probe/
func FuzzVorbisComment(f *testing.F) {
	f.Add([]byte("\x01\x00\x00\x00v\x02\x00\x00\x00\x07\x00\x00\x00TITLE=T\x0c\x00\x00\x00TRACKNUMBER=3"), false)
	f.Add([]byte("\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x80TITLE=huge"), true)
	f.Add([]byte("\x00\x00\x00\x00\xff\xff\xff\xff"), false)
	f.Fuzz(func(t *testing.T, b []byte, truncated bool) {
		var tags Tags
		if err := parseVorbisComment(b, truncated, &tags); err != nil && truncated {
			t.Fatalf("a truncated comment block gives %v", err)
		}
		for _, list := range [][]string{tags.Artists, tags.AlbumArtists, tags.Genres} {
			if len(list) > maxTagValues {
				t.Fatalf("%d values for one tag", len(list))
			}
		}
		if tags.Track < 0 || tags.Disc < 0 || tags.Year < 0 || tags.Year > 9999 {
			t.Fatalf("tags %+v", tags)
		}
	})
}
