package probe

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"mustserv/internal/testenv"
)

func psFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/mpegps/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func probePSBytes(b []byte, opts Options) (*Report, error) {
	return Probe(context.Background(), bytes.NewReader(b), int64(len(b)), "x.mpg", opts)
}

func TestMPEGPS(t *testing.T) {
	t.Parallel()
	video := func(codec string) Stream {
		return Stream{Type: "video", Codec: codec, Width: 64, Height: 64, FrameRate: 25}
	}
	mp2 := Stream{Type: "audio", Codec: "mp2", SampleRate: 22050, Channels: 1}
	for _, tt := range []struct {
		path string
		want Report
	}{
		// From the first audio PTS (0.518 s) to the end of the last
		// picture (5.5 s, timed by its temporal reference, + 40 ms).
		{"testdata/mpegps/mpeg1-mp2.mpg", Report{
			Container: "mpegps", Duration: 5.021811, BitrateAvg: 133014, BitratePeak: 134904,
			PeakWindow: 4, PeakMethod: Exact, Streams: []Stream{video("mpeg1video"), mp2},
		}},
		{"testdata/mpegps/mpeg2-mp2.mpg", Report{
			Container: "mpegps", Duration: 5.021811, BitrateAvg: 138163, BitratePeak: 139940,
			PeakWindow: 4, PeakMethod: Exact, Streams: []Stream{video("mpeg2video"), mp2},
		}},
		// AC-3 in private stream 1: its 4-byte sub-stream header is not
		// payload.
		{"testdata/mpegps/mpeg2-ac3.vob", Report{
			Container: "mpegps", Duration: 5.024, BitrateAvg: 138211, BitratePeak: 139958,
			PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{video("mpeg2video"), {Type: "audio", Codec: "ac3", SampleRate: 48000, Channels: 1}},
		}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			checkReport(t, tt.path, &tt.want)
		})
	}
}

// TestMPEGPSSampled: a file larger than the byte budget is sampled: the
// head and tail give the duration, the samples the average (from their
// share of payload) and an index peak.
func TestMPEGPSSampled(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		duration float64
		avg      int64
	}{
		{"mpeg1-mp2.mpg", 5.0155, 133014},
		{"mpeg2-mp2.mpg", 5.0155, 138163},
		{"mpeg2-ac3.vob", 5.024, 138211},
	} {
		b := psFixture(t, tt.name)
		c := &readCounter{r: bytes.NewReader(b)}
		rep, err := Probe(context.Background(), c, int64(len(b)), tt.name, Options{MaxBytes: 40000})
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if rep.PeakMethod != Index || rep.Duration < tt.duration-0.05 || rep.Duration > tt.duration+0.05 ||
			!within(rep.BitrateAvg, tt.avg, 0.05) || rep.BitratePeak < rep.BitrateAvg || len(rep.Streams) != 2 || c.n > 40000 {
			t.Errorf("%s: read %d bytes: %+v", tt.name, c.n, rep)
		}
	}
}

func TestMPEGPSBroken(t *testing.T) {
	t.Parallel()
	b := psFixture(t, "mpeg2-mp2.mpg")
	random := randomBytes(7, 8, 4096)
	for _, tt := range []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"pack header only", b[:14], ErrCorrupt},
		// One picture: 40 ms of video.
		{"first 100 bytes", b[:100], nil},
		{"random", random, ErrUnknownFormat},
		{"random after a pack header", slicesConcat(b[:14], random), ErrCorrupt},
	} {
		rep, err := probePSBytes(tt.file, Options{})
		if tt.want == nil {
			if err != nil || !(rep.Duration > 0) {
				t.Errorf("%s: %v %+v", tt.name, err, rep)
			}
			continue
		}
		if !errors.Is(err, tt.want) || rep == nil || rep.Error == "" {
			t.Errorf("%s: error %v, want %v (%+v)", tt.name, err, tt.want, rep)
		}
	}
	// Every prefix, and every file with a stretch of it zeroed, probes
	// cleanly.
	for n := 0; n <= len(b); n += 1009 {
		broken := bytes.Clone(b)
		clear(broken[n:min(len(b), n+3000)])
		for _, file := range [][]byte{b[:n], broken} {
			rep, err := probePSBytes(file, Options{})
			if err != nil && (rep == nil || rep.Error == "") || err == nil && !(rep.Duration > 0) {
				t.Errorf("at %d: %v %+v", n, err, rep)
			}
		}
	}
}

// TestMPEGPSHuge: a 2 GB file of zeros after its first packs, and a PES
// claiming 64 KB in a small file, end quickly with little memory. Not
// parallel: it measures allocations.
func TestMPEGPSHuge(t *testing.T) {
	b := psFixture(t, "mpeg2-mp2.mpg")
	cut := bytes.Clone(b[:4096])
	cut[32+4], cut[32+5] = 0xff, 0xff // the first video PES claims 65,535 bytes
	for _, tt := range []struct {
		name string
		r    io.ReaderAt
		size int64
		want error
	}{
		{"2 GB of zeros", zeroTail{b[:64<<10], 1 << 31}, 1 << 31, ErrCorrupt},
		{"PES claiming 64 KB", bytes.NewReader(cut), int64(len(cut)), nil},
	} {
		rep, err, alloc := probeAllocs(tt.r, tt.size, "x.mpg")
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v: %+v", tt.name, err, tt.want, rep)
		}
		t.Logf("%s: %v, %d bytes allocated", tt.name, err, alloc)
		if alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated", tt.name, alloc)
		}
	}
}

// TestMPEGPSSampledLarge: a program stream made at test time, larger
// than the budgets, with a bitrate that varies strongly: 90 s of MPEG-2
// video with B-frames whose picture is noise for 10 s of every 23, with
// MPEG audio.
func TestMPEGPSSampledLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 90 s of video")
	}
	t.Parallel()
	ffmpeg := testenv.NeedTool(t, "ffmpeg")
	path := filepath.Join(t.TempDir(), "varying.mpg")
	runTool(t, ffmpeg, "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc=s=192x144:r=25:d=90", "-f", "lavfi", "-i", "sine=f=440:d=90:sample_rate=48000",
		"-vf", `noise=alls=40:allf=t:all_seed=5:enable=between(mod(t\,23)\,13\,23)`,
		"-c:v", "mpeg2video", "-q:v", "6", "-bf", "2", "-g", "12", "-c:a", "mp2", "-b:a", "128k", "-f", "vob", path)
	checkMPEGSampled(t, path, []mpegBudget{
		{512 << 10, 2}, {1 << 20, 2}, {2 << 20, 2}, {4 << 20, 1.2}, {0, 1.2},
	})
}
