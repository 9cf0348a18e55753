package probe

import (
	"bytes"
	"context"
	"testing"
	"time"
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
		// Sampling, which the probe takes only for streams of
		// thousands of pages.
		s := &source{ctx: context.Background(), r: bytes.NewReader(file), size: int64(len(file)), budget: 1 << 20, steps: 1e5, window: 4 * time.Second}
		var r Report
		st, audioStart, err := oggHeaders(s, &r)
		if err != nil {
			return
		}
		last, err := oggLastGranule(s, &st, audioStart)
		if err != nil {
			return
		}
		if peak, scale, _ := oggSample(s, &st, audioStart, last, 1<<10); peak < 0 || !(scale >= 0 && scale <= 1) {
			t.Fatalf("sampled peak %d, scale %v", peak, scale)
		}
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
