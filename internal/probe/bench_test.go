package probe

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
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
	for _, fam := range []string{"mp3", "flac", "ogg", "riff", "mp4", "mkv", "avi"} {
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
	dir := b.TempDir()
	const n = 10000
	lib := make([]string, n)
	for i := range lib {
		src, _ := filepath.Abs(fixtures[i%len(fixtures)])
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
