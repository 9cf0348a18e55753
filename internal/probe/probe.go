// Package probe reads what pacing, the index and the UI need to know about
// a media file — container, duration, average and peak bitrate, streams,
// tags, cover art — from its headers, indexes and tail, never its whole
// media data when an index exists. It works on an io.ReaderAt plus size, so
// the same code probes local files, HTTP origins and S3 objects with ranged
// reads, and every probe runs under a byte budget, a loop cap and the
// context's deadline, so a hostile file cannot hang it or balloon memory.
//
// One file per container family holds its parser; this file holds the
// report, the dispatch by magic bytes and the budgeted reader. It does not
// decode media, transcode, or read cover bytes (only their place).
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Method says how a peak bitrate was found.
type Method string

// The methods, from most to least exact.
const (
	// Exact: every packet's size and time were read (sample tables, a
	// frame scan, a seek table that covers every frame).
	Exact Method = "exact"
	// Index: from an index that groups packets (a TOC, cues, a sparse seek
	// table) or from samples of the file (long FLAC, Ogg, MPEG-TS/PS):
	// windows are approximate.
	Index Method = "index"
	// Nominal: the container states a constant bitrate.
	Nominal Method = "nominal"
	// Unknown: no peak could be found; BitratePeak is 0.
	Unknown Method = "unknown"
)

// Report is what a probe found. Field names in JSON are stable: other tools
// read them.
type Report struct {
	Container   string   `json:"container"`
	Duration    float64  `json:"duration_seconds"`
	BitrateAvg  int64    `json:"bitrate_avg_bps"`
	BitratePeak int64    `json:"bitrate_peak_bps"`
	PeakWindow  float64  `json:"peak_window_seconds"`
	PeakMethod  Method   `json:"peak_method"`
	Streams     []Stream `json:"streams"`
	Tags        Tags     `json:"tags"`
	Cover       *Cover   `json:"cover,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// Stream is one audio or video stream.
type Stream struct {
	Type       string  `json:"type"` // "audio" or "video"
	Codec      string  `json:"codec"`
	SampleRate int     `json:"sample_rate,omitempty"`
	Channels   int     `json:"channels,omitempty"`
	Width      int     `json:"width,omitempty"`
	Height     int     `json:"height,omitempty"`
	FrameRate  float64 `json:"frame_rate,omitempty"`
}

// Tags are the descriptive tags of a file; multi-valued where the format
// allows.
type Tags struct {
	Title        string   `json:"title,omitempty"`
	Artists      []string `json:"artists,omitempty"`
	Album        string   `json:"album,omitempty"`
	AlbumArtists []string `json:"album_artists,omitempty"`
	Track        int      `json:"track,omitempty"`
	Disc         int      `json:"disc,omitempty"`
	Year         int      `json:"year,omitempty"`
	Genres       []string `json:"genres,omitempty"`
}

// set stores the values of one of the fields "title", "artist", "album",
// "album_artist", "track", "disc", "year" (numbers are read from the start
// of the first value: "3/12" is 3, "2019-04-01" is 2019) or "genre".
// Parsers map their own keys to these.
func (t *Tags) set(field string, vals []string) {
	if len(vals) == 0 {
		return
	}
	switch field {
	case "title":
		t.Title = vals[0]
	case "artist":
		t.Artists = vals
	case "album":
		t.Album = vals[0]
	case "album_artist":
		t.AlbumArtists = vals
	case "track":
		t.Track = leadingInt(vals[0])
	case "disc":
		t.Disc = leadingInt(vals[0])
	case "year":
		if y := leadingInt(vals[0]); y > 0 {
			t.Year = y
		}
	case "genre":
		t.Genres = vals
	}
}

// Cover locates embedded cover art: where its bytes are, not the bytes.
type Cover struct {
	MIME   string `json:"mime"`
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
}

// Options bound and shape a probe. The zero value is usable.
type Options struct {
	// Window is the peak window: the peak bitrate is the highest average
	// over any Window of media time. 0 means 4 s.
	Window time.Duration
	// MaxBytes caps the bytes one probe reads. 0 means 16 MiB.
	MaxBytes int64
	// MaxSteps caps a parser's loop iterations (frames, boxes, pages).
	// 0 means 2,000,000.
	MaxSteps int
}

func (o Options) withDefaults() Options {
	if o.Window <= 0 {
		o.Window = 4 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 16 << 20
	}
	if o.MaxSteps <= 0 {
		o.MaxSteps = 2_000_000
	}
	return o
}

// Errors a probe reports.
var (
	// ErrUnknownFormat: no parser recognises the file.
	ErrUnknownFormat = errors.New("unknown format")
	// ErrBudget: the file needs more bytes or steps than the limits allow.
	ErrBudget = errors.New("probe budget exceeded")
	// ErrCorrupt: the file contradicts its own format.
	ErrCorrupt = errors.New("corrupt file")
	// errSizeOnly: a parser recognised a sound file but can give no
	// duration within the limits; Probe makes a size-only report of it.
	errSizeOnly = errors.New("no duration within the limits")
)

// parser fills rep from the file behind s.
type parser func(s *source, rep *Report) error

// format is one container family: how to recognise it and parse it.
type format struct {
	name  string
	match func(head []byte, ext string) bool
	parse parser
}

// Probe reads the file r of size bytes (name gives its extension, a hint
// when magic bytes are ambiguous) and reports what it found. A file that
// cannot be probed gives a report with Error set and a non-nil error; the
// report still carries the container when it was recognised.
//
// An extension alone never makes a report (random bytes named x.wma are
// ErrUnknownFormat, named x.mp3 the MP3 parser's ErrCorrupt). A recognised,
// sound container that states no duration and whose packets could not all
// be walked within the budget (a long live ASF broadcast, an FLV recording
// without onMetaData) gets a size-only report: container, streams and tags
// as found, Duration and bitrates 0, PeakMethod unknown, and no error — the
// file is playable, and pacing uses its rate for unknown files.
func Probe(ctx context.Context, r io.ReaderAt, size int64, name string, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	rep := &Report{PeakMethod: Unknown, PeakWindow: opts.Window.Seconds(), Streams: []Stream{}}
	s := &source{ctx: ctx, r: r, size: size, budget: opts.MaxBytes, steps: opts.MaxSteps, window: opts.Window}
	head := make([]byte, min(size, 64))
	if _, err := s.ReadAt(head, 0); err != nil {
		return fail(rep, err)
	}
	ext := strings.ToLower(path.Ext(name))
	for _, f := range formats() {
		if f.match(head, ext) {
			rep.Container = f.name
			if err := f.parse(s, rep); errors.Is(err, errSizeOnly) {
				rep.Duration, rep.BitrateAvg, rep.BitratePeak, rep.PeakMethod = 0, 0, 0, Unknown
				return rep, nil
			} else if err != nil {
				return fail(rep, err)
			}
			// The highest average over any window is at least the
			// average over all of them; a nominal rate or an index can
			// say less (a CBR MP3's frames carry headers and padding).
			if rep.BitratePeak > 0 && rep.BitratePeak < rep.BitrateAvg {
				rep.BitratePeak = rep.BitrateAvg
			}
			return rep, nil
		}
	}
	return fail(rep, ErrUnknownFormat)
}

func fail(rep *Report, err error) (*Report, error) {
	rep.Error = err.Error()
	return rep, err
}

// source is the file being probed, read through a byte budget, a step
// budget and the context.
type source struct {
	ctx    context.Context
	r      io.ReaderAt
	size   int64
	budget int64 // bytes left
	steps  int   // loop iterations left
	window time.Duration
	read   int64 // bytes read so far
}

// ReadAt reads len(p) bytes at off, counting them against the budget. A
// read past the end returns io.ErrUnexpectedEOF (or io.EOF at the end).
func (s *source) ReadAt(p []byte, off int64) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset", ErrCorrupt)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), s.size-off)
	if want > s.budget {
		return 0, ErrBudget
	}
	n, err := s.r.ReadAt(p[:want], off)
	s.budget -= int64(n)
	s.read += int64(n)
	if n == int(want) {
		err = nil
	}
	if err == nil && want < int64(len(p)) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// step counts one loop iteration against the step budget.
func (s *source) step() error {
	s.steps--
	if s.steps < 0 {
		return ErrBudget
	}
	return nil
}

// formats lists the container families, in the order they are tried.
// Each parser file adds its entry here.
func formats() []format {
	return []format{
		// (entries: one line per parser file)
		{name: "flac", match: matchFLAC, parse: parseFLAC},
		{name: "ogg", match: matchOgg, parse: parseOgg},
		{name: "wav", match: matchWAV, parse: parseWAV},
		{name: "aiff", match: matchAIFF, parse: parseAIFF},
		{name: "mp4", match: matchMP4, parse: parseMP4},
		{name: "matroska", match: matchMatroska, parse: parseMatroska},
		{name: "avi", match: matchAVI, parse: parseAVI},
		{name: "asf", match: matchASF, parse: parseASF},
		{name: "flv", match: matchFLV, parse: parseFLV},
		{name: "mpegps", match: matchMPEGPS, parse: parseMPEGPS},
		{name: "mpegts", match: matchTS, parse: parseTS},
		{name: "mp3", match: matchMP3, parse: parseMP3},
	}
}
