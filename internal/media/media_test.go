package media

import (
	"mime"
	"strings"
	"testing"
)

func TestTypeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		kind  Kind
		ctype string
	}{
		{"a.mp3", Audio, "audio/mpeg"},
		{"A.MP3", Audio, "audio/mpeg"},
		{"book.m4b", Audio, "audio/mp4"},
		{"x.opus", Audio, "audio/ogg; codecs=opus"},
		{"dir.with.dots/x.FLAC", Audio, "audio/flac"},
		{"film.mkv", Video, "video/x-matroska"},
		{"clip.m2ts", Video, "video/mp2t"},
		{"list.m3u8", Playlist, "audio/x-mpegurl"},
		{"cover.JPG", Image, "image/jpeg"},
		{"notes.txt", Other, "application/octet-stream"},
		{"noext", Other, "application/octet-stream"},
		{".mp3", Audio, "audio/mpeg"},
	}
	for _, tt := range tests {
		kind, ctype := TypeOf(tt.name)
		if kind != tt.kind || ctype != tt.ctype {
			t.Errorf("TypeOf(%q) = %v, %q; want %v, %q", tt.name, kind, ctype, tt.kind, tt.ctype)
		}
	}
}

// TestTableIsWellFormed checks every entry parses as a media type and its
// top-level type agrees with its kind.
func TestTableIsWellFormed(t *testing.T) {
	t.Parallel()
	want := map[Kind][]string{Audio: {"audio/"}, Video: {"video/"}, Image: {"image/"}, Playlist: {"application/", "audio/"}}
	for ext, ti := range types {
		if ext != strings.ToLower(ext) || !strings.HasPrefix(ext, ".") {
			t.Errorf("%q: keys are lower-case extensions with a dot", ext)
		}
		if _, _, err := mime.ParseMediaType(ti.ctype); err != nil {
			t.Errorf("%s: %q: %v", ext, ti.ctype, err)
		}
		ok := false
		for _, p := range want[ti.kind] {
			ok = ok || strings.HasPrefix(ti.ctype, p)
		}
		if !ok {
			t.Errorf("%s: %q does not fit kind %v", ext, ti.ctype, ti.kind)
		}
	}
}

func TestPlayable(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{"a.ogg": true, "b.webm": true, "c.pls": false, "d.png": false, "e": false} {
		if got := Playable(name); got != want {
			t.Errorf("Playable(%q) = %v", name, got)
		}
	}
}
