package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// The fixtures' audio: 6 s of 8 kHz mono, a tone with 1 s of noise at 3 s
// (testdata/make-flac-ogg.sh). The frame scan finds the same 12 frames of
// 4,096 samples in every FLAC fixture.
func TestFLAC(t *testing.T) {
	t.Parallel()
	stream := []Stream{{Type: "audio", Codec: "flac", SampleRate: 8000, Channels: 1}}
	tests := []struct {
		path string
		want Report
	}{
		{"testdata/flac/tagged-seektable-cover.flac", Report{
			Container: "flac", Duration: 6, BitrateAvg: 58201, BitratePeak: 68464, PeakWindow: 4, PeakMethod: Exact,
			Streams: stream,
			Tags: Tags{Title: "Tone", Artists: []string{"Alice", "Bob"}, Album: "Fixtures", AlbumArtists: []string{"Various"},
				Track: 3, Disc: 1, Year: 2021, Genres: []string{"Test", "Noise"}},
			Cover: &Cover{MIME: "image/png", Offset: 418, Size: 96},
		}},
		{"testdata/flac/noseektable.flac", Report{
			Container: "flac", Duration: 6, BitrateAvg: 58201, BitratePeak: 68464, PeakWindow: 4, PeakMethod: Exact,
			Streams: stream, Tags: Tags{Title: "Plain"},
		}},
		// The ID3v2 tag is skipped; like ffprobe, the probe keeps the
		// Vorbis comments, not the ID3 title.
		{"testdata/flac/id3v2.flac", Report{
			Container: "flac", Duration: 6, BitrateAvg: 58201, BitratePeak: 68464, PeakWindow: 4, PeakMethod: Exact,
			Streams: stream, Tags: Tags{Title: "Behind", Artists: []string{"Carol"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			checkReport(t, tt.path, &tt.want)
		})
	}
}

// TestFLACCover: the cover's offset and size point at the PNG itself.
func TestFLACCover(t *testing.T) {
	t.Parallel()
	checkCoverPNG(t, "testdata/flac/tagged-seektable-cover.flac")
}

// TestFLACBudget: over the budget for a frame scan, sampling gives an
// index peak; with the seek table close to the exact one. Without one the
// 32 KiB run out after six marks in this 6 s file, so the peak lies
// between the average and the exact peak.
func TestFLACBudget(t *testing.T) {
	t.Parallel()
	const exact = 68464 // TestFLAC
	tests := []struct {
		path   string
		method Method
		lo, hi int64
	}{
		{"testdata/flac/tagged-seektable-cover.flac", Index, exact * 9 / 10, exact * 12 / 10},
		{"testdata/flac/noseektable.flac", Index, 58201, exact * 12 / 10},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			rep, err := probeFixture(t, tt.path, Options{MaxBytes: 32 << 10})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("peak %d (%s), exact %d", rep.BitratePeak, rep.PeakMethod, exact)
			if rep.PeakMethod != tt.method || rep.BitratePeak < tt.lo || rep.BitratePeak > tt.hi {
				t.Errorf("peak %d (%s), want %s in [%d, %d]", rep.BitratePeak, rep.PeakMethod, tt.method, tt.lo, tt.hi)
			}
			if rep.Duration != 6 || rep.BitrateAvg != 58201 {
				t.Errorf("duration %v, average %d; want 6, 58201", rep.Duration, rep.BitrateAvg)
			}
		})
	}
}

// longTrack makes a 3-minute 44.1 kHz stereo WAV in dir whose bitrate
// varies the way the peak must notice: a quiet tone, with every 45 s ten
// seconds of loud noise (the peak) and six of near silence.
func longTrack(t testing.TB, dir string) string {
	t.Helper()
	ffmpeg := testenv.NeedTool(t, "ffmpeg")
	src := filepath.Join(dir, "src.wav")
	runTool(t, ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "sine=f=440:r=44100:d=180",
		"-f", "lavfi", "-i", "anoisesrc=c=pink:r=44100:a=0.5:d=180:seed=1",
		"-f", "lavfi", "-i", "anoisesrc=c=white:r=44100:a=0.5:d=180:seed=2",
		"-filter_complex", "[1]volume='if(between(mod(t,45),15,25),1,0.003)':eval=frame[n1];"+
			"[2]volume='if(between(mod(t,45),15,25),0.6,if(between(mod(t,45),30,36),0,0.002))':eval=frame[n2];"+
			"[0]volume='if(between(mod(t,45),30,36),0,0.3)':eval=frame[s];"+
			"[s][n1]amix=inputs=2:normalize=0[l];[l][n2]join=inputs=2:channel_layout=stereo",
		"-c:a", "pcm_s16le", src)
	return src
}

// runTool runs a program, failing the test with its output if it fails.
func runTool(t testing.TB, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// flacSampledMax is what probing a 3-minute CD-quality FLAC file may read:
// the metadata, and about 30 frame headers found at ~7 KiB each.
const flacSampledMax = 256 << 10

// TestFLACSampled: a 3-minute FLAC file, made at test time, is sampled,
// not scanned: the probe reads at most flacSampledMax, where the scan read
// all 14 MB, and its peak meets TestOracle's rule for index peaks against
// ffprobe's packets (within 20 %, never below 90 %).
func TestFLACSampled(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 3 minutes of audio")
	}
	t.Parallel()
	dir := t.TempDir()
	src := longTrack(t, dir)
	tests := []struct {
		name   string
		encode func(t *testing.T, out string)
	}{
		{"ffmpeg, no seek table", func(t *testing.T, out string) {
			runTool(t, testenv.NeedTool(t, "ffmpeg"), "-hide_banner", "-loglevel", "error", "-i", src, out)
		}},
		{"flac, a seek point every 10 s", func(t *testing.T, out string) {
			runTool(t, testenv.NeedTool(t, "flac"), "-s", "-o", out, src)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, string(rune('a'+i))+".flac")
			tt.encode(t, path)
			checkSampled(t, path, Index, flacSampledMax)
		})
	}
}

// checkSampled probes a long file made at test time and checks the bytes
// read and the report against ffprobe's.
func checkSampled(t *testing.T, path string, method Method, maxRead int64) {
	t.Helper()
	o, ok := oracle(t, path, 4)
	if !ok {
		t.Fatalf("ffprobe reads no packets in %s", path)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	c := &readCounter{r: f}
	rep, err := Probe(context.Background(), c, fi.Size(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d bytes read; peak %d (%s), ffprobe %d (%.1f %%); average %d, ffprobe %d",
		c.n, fi.Size(), rep.BitratePeak, rep.PeakMethod, o.Peak, 100*float64(rep.BitratePeak)/float64(o.Peak), rep.BitrateAvg, o.BitrateAvg)
	if c.n > maxRead {
		t.Errorf("read %d bytes, want ≤ %d", c.n, maxRead)
	}
	if rep.PeakMethod != method {
		t.Errorf("peak method %s, want %s", rep.PeakMethod, method)
	}
	if d := math.Abs(rep.Duration - o.Duration); d > 0.05 {
		t.Errorf("duration %.4f s, ffprobe %.4f s", rep.Duration, o.Duration)
	}
	if !within(rep.BitrateAvg, o.BitrateAvg, 0.02) {
		t.Errorf("average bitrate %d, ffprobe %d", rep.BitrateAvg, o.BitrateAvg)
	}
	tol := 0.05
	if method == Index {
		tol = 0.20
	}
	if !within(rep.BitratePeak, o.Peak, tol) || float64(rep.BitratePeak) < 0.9*float64(o.Peak) {
		t.Errorf("peak (%s) %d, ffprobe %d", rep.PeakMethod, rep.BitratePeak, o.Peak)
	}
}

// TestFLACBad: damaged files give an error, never a panic or a report
// without one.
func TestFLACBad(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("testdata/flac/tagged-seektable-cover.flac")
	if err != nil {
		t.Fatal(err)
	}
	random := randomBytes(1, 2, 4096)
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"zero length", nil, io.EOF},
		{"marker only", []byte("fLaC"), io.ErrUnexpectedEOF},
		{"cut in STREAMINFO", good[:20], io.ErrUnexpectedEOF},
		{"cut in the seek table", good[:50], io.ErrUnexpectedEOF},
		{"cut in the picture", good[:420], io.ErrUnexpectedEOF},
		{"cut in the padding", good[:5000], io.ErrUnexpectedEOF},
		{"cut after the metadata", good[:8710], io.ErrUnexpectedEOF},
		{"cut in the first frame", good[:9000], io.ErrUnexpectedEOF},
		{"cut in the audio", good[:len(good)/2], io.ErrUnexpectedEOF},
		{"random bytes", random, ErrUnknownFormat},
		{"random bytes after the marker", append([]byte("fLaC"), random...), io.ErrUnexpectedEOF},
		{"STREAMINFO not first", append([]byte("fLaC\x84\x00\x00\x00"), random...), ErrCorrupt},
		{"ID3v2 header only", []byte("ID3\x03\x00\x00\x00\x00\x00\x10"), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Probe(context.Background(), bytes.NewReader(tt.file), int64(len(tt.file)), "x.flac", Options{})
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if err != nil && rep.Error == "" {
				t.Errorf("report without its error: %+v", rep)
			}
		})
	}
}

// hugeFLAC is a FLAC file whose VORBIS_COMMENT block claims 16 MB and
// whose one comment claims 2 GB.
func hugeFLAC() []byte {
	var b bytes.Buffer
	b.WriteString("fLaC\x00\x00\x00\x22")
	info := make([]byte, 34)
	binary.BigEndian.PutUint16(info[0:], 4096)
	binary.BigEndian.PutUint16(info[2:], 4096)
	// 8,000 Hz, mono, 16 bits, 48,000 samples.
	binary.BigEndian.PutUint64(info[10:], 8000<<44|0<<41|15<<36|48000)
	b.Write(info)
	b.WriteString("\x84\xff\xff\xff")           // last block, VORBIS_COMMENT, 16 MB
	b.WriteString("\x00\x00\x00\x00")           // no vendor
	b.WriteString("\x01\x00\x00\x00")           // one comment
	b.WriteString("\x00\x00\x00\x80TITLE=huge") // of 2 GB
	return b.Bytes()
}

// TestFLACHugeComment: a 16 MB comment block holding a comment that
// claims 2 GB is read only up to the comment cap. Not parallel: it
// measures the process's allocations.
func TestFLACHugeComment(t *testing.T) {
	head := hugeFLAC()
	tests := []struct {
		name string
		size int64
	}{
		{"block past the end", int64(len(head))},
		// The file really is as long as the block says: the block is
		// read up to the cap, the comment past it is dropped, and the
		// zeros after the block are no frame.
		{"block within the file", int64(len(head)) + 16<<20},
	}
	for _, tt := range tests {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		rep, err := Probe(context.Background(), zeroTail{head, tt.size}, tt.size, "x.flac", Options{})
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: no error: %+v", tt.name, rep)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated", tt.name, alloc)
		}
	}
}

func TestFLACFrameHeader(t *testing.T) {
	t.Parallel()
	// The first frame header of the fixtures: fixed blocking, 4,096
	// samples, checked against its CRC.
	b, err := os.ReadFile("testdata/flac/noseektable.flac")
	if err != nil {
		t.Fatal(err)
	}
	const first = 4 + 4 + 34 + 4 + 55 // marker, STREAMINFO, VORBIS_COMMENT
	f, ok := flacFrameHeader(b[first : first+16])
	if want := (flacFrame{number: 0, blockSize: 4096}); !ok || f != want {
		t.Errorf("frame header %+v %v, want %+v", f, ok, want)
	}
	h := append([]byte{}, b[first:first+16]...)
	h[5] ^= 1 // breaks the CRC
	if _, ok := flacFrameHeader(h); ok {
		t.Error("a header with a bad CRC passes")
	}
}
