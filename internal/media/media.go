// Package media is MuStServ's vocabulary for media files: their kinds and
// content types, decided from the file name alone.
//
// It does no I/O and never sniffs content: a type that is not in the table
// is served as application/octet-stream.
package media

import (
	"path"
	"strings"
)

// Kind says what a file is to a player.
type Kind int

// The kinds of file MuStServ knows.
const (
	Other Kind = iota
	Audio
	Video
	Playlist
	Image
)

func (k Kind) String() string {
	switch k {
	case Audio:
		return "audio"
	case Video:
		return "video"
	case Playlist:
		return "playlist"
	case Image:
		return "image"
	}
	return "other"
}

type typeInfo struct {
	kind  Kind
	ctype string
}

// types maps a lower-case extension to its kind and content type. The
// types are the IANA ones where one exists, else what browsers and VLC
// expect (audio/x-ms-wma, video/x-flv).
var types = map[string]typeInfo{
	".mp3":  {Audio, "audio/mpeg"},
	".m4a":  {Audio, "audio/mp4"},
	".m4b":  {Audio, "audio/mp4"},
	".aac":  {Audio, "audio/aac"},
	".flac": {Audio, "audio/flac"},
	".ogg":  {Audio, "audio/ogg"},
	".oga":  {Audio, "audio/ogg"},
	".opus": {Audio, "audio/ogg; codecs=opus"},
	".wav":  {Audio, "audio/wav"},
	".aif":  {Audio, "audio/aiff"},
	".aiff": {Audio, "audio/aiff"},
	".wma":  {Audio, "audio/x-ms-wma"},
	".mka":  {Audio, "audio/x-matroska"},
	".mp4":  {Video, "video/mp4"},
	".m4v":  {Video, "video/mp4"},
	".mov":  {Video, "video/quicktime"},
	".mkv":  {Video, "video/x-matroska"},
	".webm": {Video, "video/webm"},
	".avi":  {Video, "video/x-msvideo"},
	".ts":   {Video, "video/mp2t"},
	".m2ts": {Video, "video/mp2t"},
	".mts":  {Video, "video/mp2t"},
	".mpg":  {Video, "video/mpeg"},
	".mpeg": {Video, "video/mpeg"},
	".wmv":  {Video, "video/x-ms-wmv"},
	".flv":  {Video, "video/x-flv"},
	".3gp":  {Video, "video/3gpp"},
	".m3u8": {Playlist, "audio/x-mpegurl"}, // not HLS's type: VLC 3 then refuses a plain M3U
	".m3u":  {Playlist, "audio/x-mpegurl"},
	".pls":  {Playlist, "audio/x-scpls"},
	".xspf": {Playlist, "application/xspf+xml"},
	".jpg":  {Image, "image/jpeg"},
	".jpeg": {Image, "image/jpeg"},
	".png":  {Image, "image/png"},
	".webp": {Image, "image/webp"},
	".gif":  {Image, "image/gif"},
}

// ext returns name's extension in lower case, allocating only when the
// extension has upper-case letters.
func ext(name string) string {
	e := path.Ext(name)
	for i := 0; i < len(e); i++ {
		if c := e[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(e)
		}
	}
	return e
}

// TypeOf returns the kind and content type of a file called name.
func TypeOf(name string) (Kind, string) {
	if t, ok := types[ext(name)]; ok {
		return t.kind, t.ctype
	}
	return Other, "application/octet-stream"
}

// KindOf returns the kind of a file called name.
func KindOf(name string) Kind {
	k, _ := TypeOf(name)
	return k
}

// Playable reports whether a player can play a file called name: audio or
// video.
func Playable(name string) bool {
	k := KindOf(name)
	return k == Audio || k == Video
}
