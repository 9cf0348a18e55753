package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/testenv"
)

// The fixtures' audio: 6 s of 8 kHz mono, a tone with 1 s of noise at 3 s
// (testdata/make-flac-ogg.sh).
func TestOgg(t *testing.T) {
	t.Parallel()
	tags := Tags{Title: "Tone", Artists: []string{"Alice", "Bob"}, Album: "Fixtures", AlbumArtists: []string{"Various"},
		Track: 3, Disc: 1, Year: 2021, Genres: []string{"Test"}}
	tests := []struct {
		path string
		want Report
	}{
		{"testdata/ogg/vorbis.ogg", Report{
			Container: "ogg", Duration: 6, BitrateAvg: 6629, BitratePeak: 7890, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "audio", Codec: "vorbis", SampleRate: 8000, Channels: 1}},
			// oggenc writes the -c comments before -a's ARTIST.
			Tags: Tags{Title: "Tone", Artists: []string{"Bob", "Alice"}, Album: "Fixtures", AlbumArtists: []string{"Various"},
				Track: 3, Disc: 1, Year: 2021, Genres: []string{"Test"}},
		}},
		// Duration is (last granule − 312 samples of pre-skip) / 48 kHz;
		// the METADATA_BLOCK_PICTURE comment gives no Cover (its bytes
		// are base64 inside the comment packet).
		{"testdata/ogg/opus.opus", Report{
			Container: "ogg", Duration: 6, BitrateAvg: 17381, BitratePeak: 17736, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "audio", Codec: "opus", SampleRate: 48000, Channels: 1}},
			Tags:    tags,
		}},
		// Same frames as the FLAC fixtures, and the same peak.
		{"testdata/ogg/flac.oga", Report{
			Container: "ogg", Duration: 6, BitrateAvg: 58201, BitratePeak: 68464, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "audio", Codec: "flac", SampleRate: 8000, Channels: 1}},
			Tags:    Tags{Title: "Wrapped", Artists: []string{"Dave"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			checkReport(t, tt.path, &tt.want)
		})
	}
}

// TestOggIndex: sampling page headers at spread offsets, as the probe does
// when the page walk is over budget, gives a peak within 20 % of the exact
// one and not below 90 % of it.
func TestOggIndex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path  string
		exact int64 // TestOgg
	}{
		// Not vorbis.ogg: its two audio pages hold 3 s each, so no index
		// of it resolves a 4 s window.
		{"testdata/ogg/opus.opus", 17736},
		{"testdata/ogg/flac.oga", 68464},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			s := &source{ctx: context.Background(), r: bytes.NewReader(b), size: int64(len(b)), budget: 1 << 20, steps: 1e6, window: 4 * time.Second}
			var rep Report
			st, audioStart, err := oggHeaders(s, &rep)
			if err != nil {
				t.Fatal(err)
			}
			last, err := oggLastGranule(s, &st, audioStart)
			if err != nil {
				t.Fatal(err)
			}
			peak, _, err := oggSample(s, &st, audioStart, last, 1<<10)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("sampled peak %d, exact %d", peak, tt.exact)
			if float64(peak) < 0.9*float64(tt.exact) || float64(peak) > 1.2*float64(tt.exact) {
				t.Errorf("sampled peak %d, exact %d", peak, tt.exact)
			}
		})
	}
}

// TestOggSampled: 3-minute Ogg files made at test time. Vorbis with
// ffmpeg's pages of about a second is walked page by page (exact) for a
// few dozen KiB; Opus with a page every 20 ms (9,000 pages: walking their
// headers would read ~270 KiB in 18,000 reads) is sampled instead. Both
// read at most 64 KiB, and their peaks meet TestOracle's rules against
// ffprobe's packets.
func TestOggSampled(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 3 minutes of audio")
	}
	t.Parallel()
	dir := t.TempDir()
	src := longTrack(t, dir)
	tests := []struct {
		name   string
		args   []string
		method Method
	}{
		// Mono: Vorbis encodes slowest, and the test should not wait.
		{"vorbis.ogg", []string{"-ac", "1", "-c:a", "libvorbis", "-q:a", "3"}, Exact},
		{"opus.opus", []string{"-c:a", "libopus", "-b:a", "96k", "-page_duration", "20000"}, Index},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, tt.name)
			args := append([]string{"-hide_banner", "-loglevel", "error", "-i", src}, tt.args...)
			runTool(t, testenv.NeedTool(t, "ffmpeg"), append(args, path)...)
			checkSampled(t, path, tt.method, 64<<10)
		})
	}
}

// oggPageBytes builds one page holding whole packets, with its CRC.
func oggPageBytes(flags byte, granule int64, serial, seq uint32, packets ...[]byte) []byte {
	var segs, body []byte
	for _, p := range packets {
		n := len(p)
		for ; n >= 255; n -= 255 {
			segs = append(segs, 255)
		}
		segs = append(segs, byte(n))
		body = append(body, p...)
	}
	h := make([]byte, oggHeaderLen, oggHeaderLen+len(segs)+len(body))
	copy(h, "OggS")
	h[5] = flags
	binary.LittleEndian.PutUint64(h[6:], uint64(granule))
	binary.LittleEndian.PutUint32(h[14:], serial)
	binary.LittleEndian.PutUint32(h[18:], seq)
	h[26] = byte(len(segs))
	page := append(append(h, segs...), body...)
	binary.LittleEndian.PutUint32(page[22:], oggCRC(page))
	return page
}

// opusFile builds a one-second Ogg Opus file whose OpusTags packet is tags.
func opusFile(tags []byte) []byte {
	head := []byte("OpusHead\x01\x01\x38\x01\x40\x1f\x00\x00\x00\x00\x00")
	f := oggPageBytes(2, 0, 7, 0, head)
	f = append(f, oggPageBytes(0, 0, 7, 1, tags)...)
	return append(f, oggPageBytes(4, 48000+312, 7, 2, make([]byte, 100))...)
}

func TestOggBuilt(t *testing.T) {
	t.Parallel()
	tags := append([]byte("OpusTags\x00\x00\x00\x00\x01\x00\x00\x00\x0a\x00\x00\x00"), "TITLE=Tiny"...)
	good := opusFile(tags)
	rep, err := Probe(context.Background(), bytes.NewReader(good), int64(len(good)), "x.opus", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Duration != 1 || rep.BitrateAvg != 800 || rep.Tags.Title != "Tiny" || rep.PeakMethod != Exact {
		t.Errorf("report %+v", rep)
	}
	// A page inside the last page's data that looks like a later page
	// with a huge granule fails its CRC and is passed over.
	fake := oggPageBytes(4, 1<<40, 7, 3, []byte("x"))
	fake[22] ^= 1
	tail := oggPageBytes(4, 48000+312, 7, 2, append(make([]byte, 20), fake...))
	spoof := append(good[:len(good)-len(oggPageBytes(4, 48000+312, 7, 2, make([]byte, 100)))], tail...)
	rep, err = Probe(context.Background(), bytes.NewReader(spoof), int64(len(spoof)), "x.opus", Options{})
	if err != nil || rep.Duration != 1 {
		t.Errorf("spoofed last page: duration %v, error %v", rep.Duration, err)
	}
	// A stream of an unknown codec first (a skeleton, say), its pages
	// interleaved with the Opus stream's: the Opus stream is probed.
	var mux []byte
	mux = append(mux, oggPageBytes(2, 0, 9, 0, []byte("fishead\x00"))...)
	mux = append(mux, good[:len(good)-len(oggPageBytes(4, 48000+312, 7, 2, make([]byte, 100)))]...)
	mux = append(mux, oggPageBytes(0, 5, 9, 1, make([]byte, 300))...)
	mux = append(mux, oggPageBytes(4, 48000+312, 7, 2, make([]byte, 100))...)
	mux = append(mux, oggPageBytes(4, 1<<30, 9, 2, make([]byte, 300))...)
	rep, err = Probe(context.Background(), bytes.NewReader(mux), int64(len(mux)), "x.ogg", Options{})
	if err != nil || rep.Duration != 1 || rep.BitrateAvg != 800 || len(rep.Streams) != 1 || rep.Streams[0].Codec != "opus" {
		t.Errorf("multiplexed: %+v, error %v", rep, err)
	}
}

func TestOggBad(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("testdata/ogg/opus.opus")
	if err != nil {
		t.Fatal(err)
	}
	random := randomBytes(3, 4, 4096)
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"zero length", nil, io.EOF},
		{"capture pattern only", []byte("OggS"), io.ErrUnexpectedEOF},
		{"cut in the first page", good[:40], io.ErrUnexpectedEOF},
		{"cut in the tags", good[:200], io.ErrUnexpectedEOF},
		{"cut in the audio", good[:len(good)/2], io.ErrUnexpectedEOF},
		{"cut in the last page", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"random bytes", random, ErrUnknownFormat},
		{"random bytes after the capture pattern", append([]byte("OggS"), random...), ErrCorrupt},
		{"unknown codec", oggPageBytes(2, 0, 1, 0, []byte("\x80theora")), ErrUnknownFormat},
		{"no tags packet", append(oggPageBytes(2, 0, 1, 0, []byte("OpusHead\x01\x01\x38\x01\x40\x1f\x00\x00\x00\x00\x00")),
			oggPageBytes(0, 0, 1, 1, []byte("NotTags!"))...), ErrCorrupt},
		{"comment count past the end", opusFile([]byte("OpusTags\x00\x00\x00\x00\xff\xff\xff\xff")), ErrCorrupt},
		{"no audio pages", good[:3000], ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Probe(context.Background(), bytes.NewReader(tt.file), int64(len(tt.file)), "x.ogg", Options{})
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if err != nil && rep.Error == "" {
				t.Errorf("report without its error: %+v", rep)
			}
		})
	}
}

// TestOggHugeComment: a comment claiming 2 GB is not allocated. Not
// parallel: it measures the process's allocations.
func TestOggHugeComment(t *testing.T) {
	file := opusFile([]byte("OpusTags\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x80TITLE=huge"))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.opus", Options{})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("error %v, want %v", err, ErrCorrupt)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("%d bytes allocated", alloc)
	}
}

func TestVorbisComment(t *testing.T) {
	t.Parallel()
	comment := func(vendor string, comments ...string) []byte {
		b := binary.LittleEndian.AppendUint32(nil, uint32(len(vendor)))
		b = append(b, vendor...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(comments)))
		for _, c := range comments {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(c)))
			b = append(b, c...)
		}
		return b
	}
	full := comment("v", "title=T", "ARTIST=A", "Artist=B", "ALBUM ARTIST=X", "ALBUMARTIST=Y", "TRACKNUMBER=07/12",
		"DISCNUMBER=2", "YEAR=1999", "GENRE=Rock", "GENRE=Pop", "UNKNOWN=z", "no equals sign", "ALBUM=")
	tests := []struct {
		name      string
		b         []byte
		truncated bool
		want      Tags
		err       error
	}{
		{"all tags", full, false, Tags{Title: "T", Artists: []string{"A", "B"}, AlbumArtists: []string{"X", "Y"},
			Track: 7, Disc: 2, Year: 1999, Genres: []string{"Rock", "Pop"}}, nil},
		{"date", comment("", "DATE=2021-05-04T10:00"), false, Tags{Year: 2021}, nil},
		{"cut, complete", full[:40], false, Tags{Title: "T", Artists: []string{"A"}}, ErrCorrupt},
		{"cut, truncated", full[:40], true, Tags{Title: "T", Artists: []string{"A"}}, nil},
		{"empty", nil, false, Tags{}, ErrCorrupt},
		{"vendor past the end", []byte("\xff\xff\xff\xff"), false, Tags{}, ErrCorrupt},
		{"comment claims 2 GB", append(comment("", "TITLE=x")[:8], "\x00\x00\x00\x80TITLE=x"...), false, Tags{}, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got Tags
			err := parseVorbisComment(tt.b, tt.truncated, &got)
			if !errors.Is(err, tt.err) {
				t.Errorf("error %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
		})
	}
}
