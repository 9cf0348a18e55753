package probe

// The fixtures under testdata/ are committed; these scripts (Debian's
// ffmpeg, lame, flac, opus-tools, vorbis-tools, mkvtoolnix) document how each was made
// and regenerate them byte for byte.
//go:generate bash testdata/make-mp3-riff.sh
//go:generate bash testdata/make-flac-ogg.sh
//go:generate bash testdata/make-mp4.sh
//go:generate bash testdata/make-mkv.sh
//go:generate bash testdata/make-avi.sh
//go:generate bash testdata/make-fallback.sh
//go:generate bash testdata/make-ts.sh
