package probe

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeeds adds the first limit bytes of every fixture matching the
// patterns to the corpus: the headers are what the parsers read, and
// the fuzzer mutates (and minimises) small inputs much faster.
func fuzzSeeds(f *testing.F, limit int, patterns ...string) {
	f.Helper()
	for _, p := range patterns {
		files, err := filepath.Glob(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				continue // a directory
			}
			f.Add(b[:min(len(b), limit)])
		}
	}
}

// fuzzProbe probes b as a file named name under tight limits and checks
// that a report without an error makes sense.
func fuzzProbe(t *testing.T, b []byte, name string) {
	rep, err := Probe(context.Background(), bytes.NewReader(b), int64(len(b)), name,
		Options{MaxBytes: 1 << 20, MaxSteps: 100_000})
	if rep == nil {
		t.Fatal("nil report")
	}
	if err != nil {
		if rep.Error == "" {
			t.Fatalf("error %v but none in the report", err)
		}
		return
	}
	if math.IsNaN(rep.Duration) || math.IsInf(rep.Duration, 0) || rep.Duration < 0 {
		t.Fatalf("duration %v", rep.Duration)
	}
	if rep.BitrateAvg < 0 || rep.BitratePeak < 0 {
		t.Fatalf("bitrates %d, %d", rep.BitrateAvg, rep.BitratePeak)
	}
	if c := rep.Cover; c != nil && (c.Offset < 0 || c.Size <= 0 || c.Offset+c.Size > int64(len(b))) {
		t.Fatalf("cover %+v outside a file of %d bytes", *c, len(b))
	}
}

func FuzzMP3(f *testing.F) {
	fuzzSeeds(f, 16<<10, "testdata/mp3/*.mp3", "testdata/mp3/*/*.mp3")
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzProbe(t, b, "fuzz.mp3")
	})
}

func FuzzID3(f *testing.F) {
	fuzzSeeds(f, 2<<10, "testdata/mp3/*.mp3", "testdata/mp3/*/*.mp3")
	f.Add([]byte("ID3\x04\x00\x50\x00\x00\x00\x20\x00\x00\x00\x06\x00\x00TPE1\x00\x00\x00\x04\x00\x01\x03A\x00B"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &source{ctx: context.Background(), r: bytes.NewReader(b), size: int64(len(b)), budget: 1 << 20, steps: 100_000}
		var rep Report
		n, err := parseID3v2(s, 0, &rep)
		if err != nil {
			return
		}
		if n < id3HeaderLen || n > int64(len(b)) {
			t.Fatalf("tag size %d in %d bytes", n, len(b))
		}
		if c := rep.Cover; c != nil && (c.Offset < 0 || c.Size <= 0 || c.Offset+c.Size > n) {
			t.Fatalf("cover %+v outside a tag of %d bytes", *c, n)
		}
	})
}
