package probe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The fixtures (testdata/make-mkv.sh): 6 s of 64x64 video at 10 fps and
// 16 kHz mono audio, both with a burst of noise at 3-4 s.
func TestMatroska(t *testing.T) {
	t.Parallel()
	video := func(codec string) Stream {
		return Stream{Type: "video", Codec: codec, Width: 64, Height: 64, FrameRate: 10}
	}
	audio := func(codec string) Stream {
		if codec == "opus" {
			return Stream{Type: "audio", Codec: codec, SampleRate: 48000, Channels: 1}
		}
		return Stream{Type: "audio", Codec: codec, SampleRate: 16000, Channels: 1}
	}
	tests := []struct {
		path string
		want Report
	}{
		{"testdata/mkv/h264-aac-tags-cover.mkv", Report{
			Container: "matroska", Duration: 6.064, BitrateAvg: 79154, BitratePeak: 95646, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{video("h264"), audio("aac")},
			Tags:    Tags{Title: "Tone", Artists: []string{"Alice"}, Album: "Fixtures", Year: 2021, Genres: []string{"Test"}},
			Cover:   &Cover{MIME: "image/png", Offset: 512, Size: 96},
		}},
		{"testdata/mkv/vp9-opus.webm", Report{
			Container: "webm", Duration: 6.008, BitrateAvg: 100039, BitratePeak: 117606, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{video("vp9"), audio("opus")},
			Tags:    Tags{Title: "Web"},
		}},
		{"testdata/mkv/flac.mka", Report{
			Container: "matroska", Duration: 6, BitrateAvg: 89554, BitratePeak: 107506, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{audio("flac")},
			Tags:    Tags{Title: "Lossless", Artists: []string{"Carol"}},
		}},
		// Tagged the Matroska way: album (50) and track (30) levels. The
		// Opus frames are laced 8 to a block (mkvmerge): each frame is
		// counted at its own time, like ffprobe's packets.
		{"testdata/mkv/opus-album-tags.mka", Report{
			Container: "matroska", Duration: 6.006528894, BitrateAvg: 34005, BitratePeak: 34302, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{audio("opus")},
			Tags: Tags{Title: "Tone", Artists: []string{"Alice"}, Album: "Fixtures", AlbumArtists: []string{"Various"},
				Track: 3, Year: 2021, Genres: []string{"Test"}},
			Cover: &Cover{MIME: "image/png", Offset: 5468, Size: 96},
		}},
		// No Cues, every size known (mkvmerge --no-cues); Opus laced.
		{"testdata/mkv/nocues-h264-opus.mkv", Report{
			Container: "matroska", Duration: 6.008, BitrateAvg: 89388, BitratePeak: 105054, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{video("h264"), audio("opus")},
		}},
		// Live-written: unknown sizes, no Cues, no Duration: the duration
		// is the end of the last block (its time plus the gap before it).
		{"testdata/mkv/live-vp8-opus.webm", Report{
			Container: "webm", Duration: 6.021000000000001, BitrateAvg: 80528, BitratePeak: 93972, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{video("vp8"), audio("opus")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			checkReport(t, tt.path, &tt.want)
		})
	}
}

// TestMatroskaCover: the cover's offset and size point at the PNG itself.
func TestMatroskaCover(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"testdata/mkv/h264-aac-tags-cover.mkv", "testdata/mkv/opus-album-tags.mka"} {
		checkCoverPNG(t, path)
	}
}

// TestMatroskaBudget: over the budget for a cluster scan, the Cues give an
// index peak close to the exact one; without Cues, so do the Clusters'
// headers and Timestamps, and a live-written file's last cluster gives
// its duration. Clusters of unknown size cannot be stepped over: the
// scanned part gives a lower bound for the peak, and the last cluster,
// found in the file's tail, the duration.
func TestMatroskaBudget(t *testing.T) {
	t.Parallel()
	live, err := os.ReadFile("testdata/mkv/live-vp8-opus.webm")
	if err != nil {
		t.Fatal(err)
	}
	unknown := mkvUnknownClusters(t, live)
	tests := []struct {
		name   string
		file   []byte
		exact  int64 // TestMatroska
		lo     int64
		method Method
		budget int64 // 0: 8 KiB
	}{
		{"testdata/mkv/h264-aac-tags-cover.mkv", nil, 95646, 95646 * 9 / 10, Index, 0},
		{"testdata/mkv/vp9-opus.webm", nil, 117606, 117606 * 9 / 10, Index, 0},
		// mkvmerge laces 8 Opus frames a block: few blocks to read.
		{"testdata/mkv/nocues-h264-opus.mkv", nil, 105054, 105054 * 9 / 10, Index, 3 << 10},
		{"testdata/mkv/live-vp8-opus.webm", live, 93972, 93972 * 9 / 10, Index, 0},
		{"live, clusters of unknown size", unknown, 93972, 80528, Index, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := tt.file
			if file == nil {
				var err error
				if file, err = os.ReadFile(tt.name); err != nil {
					t.Fatal(err)
				}
			}
			exact, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.mkv", Options{})
			if err != nil || exact.PeakMethod != Exact || exact.BitratePeak != tt.exact {
				t.Fatalf("without a budget: %+v, %v", exact, err)
			}
			budget := tt.budget
			if budget == 0 {
				budget = 8 << 10
			}
			rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.mkv", Options{MaxBytes: budget})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("peak %d (%s), exact %d; average %d, exact %d", rep.BitratePeak, rep.PeakMethod, tt.exact, rep.BitrateAvg, exact.BitrateAvg)
			if rep.PeakMethod != tt.method || rep.BitratePeak < tt.lo || rep.BitratePeak > tt.exact*12/10 {
				t.Errorf("peak %d (%s), want %s in [%d, %d]", rep.BitratePeak, rep.PeakMethod, tt.method, tt.lo, tt.exact*12/10)
			}
			if !within(rep.BitrateAvg, exact.BitrateAvg, 0.02) || math.Abs(rep.Duration-exact.Duration) > 0.05 {
				t.Errorf("duration %v, average %d; exact %v, %d", rep.Duration, rep.BitrateAvg, exact.Duration, exact.BitrateAvg)
			}
		})
	}
}

// mkvUnknownClusters returns a copy of a file whose Clusters have their
// sizes replaced by "unknown" (all ones, same length), as some live
// muxers write them.
func mkvUnknownClusters(t *testing.T, file []byte) []byte {
	t.Helper()
	b := bytes.Clone(file)
	id := []byte{0x1F, 0x43, 0xB6, 0x75}
	n := 0
	for i := bytes.Index(b, id); i >= 0; i = next(b, id, i) {
		_, size, hn, err := ebmlHeader(b[i:])
		if err != nil || size < 0 || i+hn >= len(b) || b[i+hn] != mkvTimestamp {
			continue
		}
		sl := hn - 4
		b[i+4] = 0xFF >> (sl - 1)
		for j := 1; j < sl; j++ {
			b[i+4+j] = 0xFF
		}
		n++
	}
	if n < 2 {
		t.Fatalf("%d clusters patched", n)
	}
	return b
}

func next(b, sep []byte, i int) int {
	j := bytes.Index(b[i+1:], sep)
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// TestMatroskaLiveCut: a live-written file still being written ends in a
// cut block; the probe reports what is there.
func TestMatroskaLiveCut(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/mkv/live-vp8-opus.webm")
	if err != nil {
		t.Fatal(err)
	}
	b = b[:len(b)/2]
	rep, err := Probe(context.Background(), bytes.NewReader(b), int64(len(b)), "x.webm", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Duration < 2 || rep.Duration > 4 || rep.PeakMethod != Exact {
		t.Errorf("half a live file: duration %v, peak method %s", rep.Duration, rep.PeakMethod)
	}
}

// TestMatroskaBad: damaged files give an error, never a panic or a report
// without one.
func TestMatroskaBad(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("testdata/mkv/h264-aac-tags-cover.mkv")
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
		{"magic only", good[:4], io.ErrUnexpectedEOF},
		{"cut in the EBML header", good[:20], io.ErrUnexpectedEOF},
		{"cut in the SeekHead", good[:60], io.ErrUnexpectedEOF},
		{"cut in the clusters", good[:len(good)/2], io.ErrUnexpectedEOF},
		{"cut before the Cues", good[:len(good)-300], io.ErrUnexpectedEOF},
		{"random bytes", random, ErrUnknownFormat},
		{"random bytes after the magic", append([]byte{0x1A, 0x45, 0xDF, 0xA3}, random...), ErrCorrupt},
		{"no Segment", good[:40], ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Probe(context.Background(), bytes.NewReader(tt.file), int64(len(tt.file)), "x.mkv", Options{})
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if err != nil && rep.Error == "" {
				t.Errorf("report without its error: %+v", rep)
			}
		})
	}
}

// hugeMatroska is a WebM file whose Segment has an unknown size and holds
// Tracks and one element of id claiming size bytes.
func hugeMatroska(id []byte, size uint64) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84})
	b.WriteString("webm")
	b.Write([]byte{0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	// Tracks: one Opus track.
	b.Write([]byte{0x16, 0x54, 0xAE, 0x6B, 0x90, 0xAE, 0x8E, 0xD7, 0x81, 0x01, 0x83, 0x81, 0x02, 0x86, 0x86})
	b.WriteString("A_OPUS")
	b.Write(id)
	b.WriteByte(0x01) // an 8-byte size
	for i := 6; i >= 0; i-- {
		b.WriteByte(byte(size >> (8 * i)))
	}
	b.WriteString("data")
	return b.Bytes()
}

// TestMatroskaHuge: elements claiming gigabytes fail fast without being
// allocated, whether they run past the file or the file really is that
// big. Not parallel: it measures the process's allocations.
func TestMatroskaHuge(t *testing.T) {
	tags := []byte{0x12, 0x54, 0xC3, 0x67}
	tracks := []byte{0x16, 0x54, 0xAE, 0x6B}
	cluster := []byte{0x1F, 0x43, 0xB6, 0x75}
	tests := []struct {
		name string
		head []byte
		size int64 // of the file: head, then zeros
	}{
		{"Tags of 2 GB past the end", hugeMatroska(tags, 2<<30), 0},
		{"Tags of 2 GB within the file", hugeMatroska(tags, 2<<30), 2<<30 + 100},
		{"Tracks of 1 GB within the file", hugeMatroska(tracks, 1<<30), 1<<30 + 100},
		{"Cluster of 2 GB of zeros", hugeMatroska(cluster, 2<<30), 2<<30 + 100},
		{"Tags of 2^56 bytes", hugeMatroska(tags, 1<<56-2), 1 << 40},
	}
	for _, tt := range tests {
		size := max(tt.size, int64(len(tt.head)))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		rep, err := Probe(context.Background(), zeroTail{tt.head, size}, size, "x.webm", Options{})
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: no error: %+v", tt.name, rep)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated", tt.name, alloc)
		}
		t.Logf("%s: %v", tt.name, err)
	}
}

func TestEBMLHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   []byte
		id   uint32
		size int64
		n    int
		err  error
	}{
		{[]byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F}, 0x1A45DFA3, 31, 5, nil},
		{[]byte{0xEC, 0x40, 0x02}, 0xEC, 2, 3, nil},
		{[]byte{0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 0x18538067, -1, 12, nil},
		{[]byte{0xA3, 0xFF}, 0xA3, -1, 2, nil},
		{[]byte{0xA3, 0x7F, 0xFF}, 0xA3, -1, 3, nil},
		{[]byte{0xA3, 0x7F, 0xFE}, 0xA3, 0x3FFE, 3, nil},
		{[]byte{0x08, 0x00}, 0, 0, 0, ErrCorrupt}, // a 5-byte ID
		{[]byte{0xA3, 0x00}, 0, 0, 0, ErrCorrupt}, // a 9-byte size
		{[]byte{0x1A, 0x45}, 0, 0, 0, io.ErrUnexpectedEOF},
		{[]byte{0xA3, 0x10, 0x00}, 0, 0, 0, io.ErrUnexpectedEOF},
		{nil, 0, 0, 0, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		id, size, n, err := ebmlHeader(tt.in)
		if !errors.Is(err, tt.err) || err == nil && (id != tt.id || size != tt.size || n != tt.n) {
			t.Errorf("ebmlHeader(% x) = %x, %d, %d, %v; want %x, %d, %d, %v", tt.in, id, size, n, err, tt.id, tt.size, tt.n, tt.err)
		}
	}
}

func TestMatroskaLaceSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		b      []byte
		lacing byte
		want   []int64 // the first n-1
		hdr    int
		short  bool
	}{
		{"xiph", []byte{2, 10, 255, 3}, 0x02, []int64{10, 258, 0}, 4, false},
		{"xiph cut", []byte{2, 10, 255}, 0x02, nil, 0, true},
		// EBML: 300 (0x412C), then -2 (0xBF - 63 = 0x80|(63-2)... = 0xBD).
		{"ebml", []byte{2, 0x41, 0x2C, 0xBD}, 0x06, []int64{300, 298, 0}, 4, false},
		{"ebml cut", []byte{2, 0x41}, 0x06, nil, 0, true},
		{"ebml negative", []byte{2, 0x81, 0x80}, 0x06, nil, 0, false},
	}
	for _, tt := range tests {
		got, hdr, short := mkvLaceSizes(tt.b, int(tt.b[0])+1, tt.lacing)
		if !cmp.Equal(got, tt.want) || hdr != tt.hdr || short != tt.short {
			t.Errorf("%s: %v, %d, %v; want %v, %d, %v", tt.name, got, hdr, short, tt.want, tt.hdr, tt.short)
		}
	}
}
