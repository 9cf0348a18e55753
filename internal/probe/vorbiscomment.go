package probe

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Vorbis comments (https://xiph.org/vorbis/doc/v-comment.html), shared by
// FLAC's VORBIS_COMMENT block, Vorbis's and Opus's comment headers and
// FLAC-in-Ogg:
//
//	vendor_length u32le, vendor, count u32le, count × (length u32le, "KEY=value")
//
// The caller hands over at most maxCommentBytes of the structure (the rest
// of a bigger one is never read), so a block claiming 16 MB, or a comment
// claiming 2 GB, costs no more than that.
const (
	// maxCommentBytes bounds the bytes of one comment structure read.
	maxCommentBytes = 64 << 10
	// maxComments bounds the comments looked at.
	maxComments = 4096
	// maxTagValues bounds the values kept for one multi-valued tag.
	maxTagValues = 64
)

// parseVorbisComment reads the comment structure in b into tags. truncated
// says b is a prefix of a longer structure: a comment running past its end
// ends the parse quietly (the tags after it are lost, not the probe);
// otherwise it is corrupt.
func parseVorbisComment(b []byte, truncated bool, tags *Tags) error {
	corrupt := func(what string) error {
		if truncated {
			return nil
		}
		return fmt.Errorf("%w: vorbis comment: %s", ErrCorrupt, what)
	}
	if len(b) < 4 {
		return corrupt("short vendor length")
	}
	vendor := uint64(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if vendor > uint64(len(b)) {
		return corrupt("vendor string past the end")
	}
	b = b[vendor:]
	if len(b) < 4 {
		return corrupt("short comment count")
	}
	count := binary.LittleEndian.Uint32(b)
	b = b[4:]
	for i := uint32(0); i < count && i < maxComments; i++ {
		if len(b) < 4 {
			return corrupt("comment count past the end")
		}
		n := uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
		if n > uint64(len(b)) {
			return corrupt("comment past the end")
		}
		addComment(string(b[:n]), tags)
		b = b[n:]
	}
	return nil
}

// addComment files one "KEY=value" comment under its tag. Keys are case
// insensitive; unknown keys are ignored.
func addComment(c string, tags *Tags) {
	key, value, ok := strings.Cut(c, "=")
	if !ok || value == "" {
		return
	}
	appendValue := func(list []string) []string {
		if len(list) >= maxTagValues {
			return list
		}
		return append(list, value)
	}
	switch strings.ToUpper(key) {
	case "TITLE":
		if tags.Title == "" {
			tags.Title = value
		}
	case "ARTIST":
		tags.Artists = appendValue(tags.Artists)
	case "ALBUM":
		if tags.Album == "" {
			tags.Album = value
		}
	case "ALBUMARTIST", "ALBUM ARTIST", "ALBUM_ARTIST":
		tags.AlbumArtists = appendValue(tags.AlbumArtists)
	case "TRACKNUMBER":
		if n := leadingInt(value); n > 0 && tags.Track == 0 {
			tags.Track = n
		}
	case "DISCNUMBER":
		if n := leadingInt(value); n > 0 && tags.Disc == 0 {
			tags.Disc = n
		}
	case "DATE", "YEAR":
		// "2021", "2021-05-04", "2021-05-04T10:00": the year leads.
		if n := leadingInt(value); n > 0 && n < 10000 && tags.Year == 0 {
			tags.Year = n
		}
	case "GENRE":
		tags.Genres = appendValue(tags.Genres)
	}
}
