package probe

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// BenchmarkProbeLibrary probes a synthetic library of 10,000 files (hard
// links to the fixtures that ffprobe reads, round robin) on local disk with
// a warm cache, one after another, the way a scan's worker does, and
// reports files/s and the median bytes read per file (issue 3's targets:
// ≥ 2,000 files/s, ≤ 64 KiB median per audio file).
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -bench=ProbeLibrary -benchtime=1x ./internal/probe/
func BenchmarkProbeLibrary(b *testing.B) {
	var fixtures []string
	for _, fam := range []string{"mp3", "flac", "ogg", "riff", "mp4", "mkv", "avi", "ts", "asf", "flv", "mpegps"} {
		files, _ := filepath.Glob(filepath.Join("testdata", fam, "*"))
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil || !fi.Mode().IsRegular() || fi.Size() < 1024 {
				continue // the empty, truncated and random files are not a library
			}
			if _, err := probePath(f); err != nil {
				continue
			}
			fixtures = append(fixtures, f)
		}
	}
	if len(fixtures) == 0 {
		b.Skip("no fixtures")
	}
	benchLibrary(b, fixtures, 10000)
}

// BenchmarkProbeLongTracks is BenchmarkProbeLibrary over 3-minute
// 44.1 kHz stereo tracks made once into a temporary directory (about
// 15 s of encoding, not timed): FLAC from ffmpeg (no seek table) and from
// flac (a seek point every 10 s), Opus, Vorbis, MP3 VBR with a Xing
// header, and AAC in M4A. The fixtures are seconds long; these show what
// a real album costs, where FLAC cannot be scanned whole within the
// targets. Each file's bytes are logged.
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -bench=ProbeLongTracks -benchtime=1x -v ./internal/probe/
func BenchmarkProbeLongTracks(b *testing.B) {
	dir := b.TempDir()
	src := longTrack(b, dir)
	ffmpeg := testenv.NeedTool(b, "ffmpeg")
	ff := func(out string, args ...string) string {
		path := filepath.Join(dir, out)
		runTool(b, ffmpeg, append(append([]string{"-hide_banner", "-loglevel", "error", "-i", src}, args...), path)...)
		return path
	}
	tracks := []string{
		ff("ffmpeg.flac"),
		ff("opus.opus", "-c:a", "libopus", "-b:a", "128k"),
		ff("vorbis.ogg", "-c:a", "libvorbis", "-q:a", "5"),
		ff("aac.m4a", "-c:a", "aac", "-b:a", "192k"),
	}
	flac := filepath.Join(dir, "flac.flac")
	runTool(b, testenv.NeedTool(b, "flac"), "-s", "-o", flac, src)
	mp3 := filepath.Join(dir, "vbr.mp3")
	runTool(b, testenv.NeedTool(b, "lame"), "--quiet", "-V", "2", src, mp3)
	tracks = append(tracks, flac, mp3)
	for _, p := range tracks {
		n, err := probePath(p)
		if err != nil {
			b.Fatalf("%s: %v", p, err)
		}
		fi, _ := os.Stat(p)
		b.Logf("%s: %d of %d bytes read", filepath.Base(p), n, fi.Size())
	}
	benchLibrary(b, tracks, 2000)
}

// benchLibrary links n files into a temporary directory, round robin from
// files, probes them all once to warm the cache, then times probing them
// one after another and reports files/s and the median and largest bytes
// read per file.
func benchLibrary(b *testing.B, files []string, n int) {
	dir := b.TempDir()
	lib := make([]string, n)
	for i := range lib {
		src, _ := filepath.Abs(files[i%len(files)])
		lib[i] = filepath.Join(dir, fmt.Sprintf("%05d%s", i, filepath.Ext(src)))
		if err := os.Link(src, lib[i]); err != nil {
			b.Fatal(err)
		}
	}
	for _, p := range lib { // warm the cache
		probePath(p)
	}
	b.ResetTimer()
	var elapsed time.Duration
	var read []int64
	for b.Loop() {
		read = read[:0]
		start := time.Now()
		for _, p := range lib {
			n, err := probePath(p)
			if err != nil {
				b.Fatalf("%s: %v", p, err)
			}
			read = append(read, n)
		}
		elapsed += time.Since(start)
	}
	slices.Sort(read)
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "files/s")
	b.ReportMetric(float64(read[len(read)/2]), "median-bytes-read/file")
	b.ReportMetric(float64(read[len(read)-1]), "max-bytes-read/file")
}

func probePath(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	c := &readCounter{r: f}
	_, err = Probe(context.Background(), c, fi.Size(), path, Options{})
	return c.n, err
}
