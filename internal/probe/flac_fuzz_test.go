package probe

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// fixtureSeeds returns the contents of the fixtures matching pattern, the
// seeds of a fuzz target; it fails f if there are none.
func fixtureSeeds(f *testing.F, pattern string) [][]byte {
	f.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in %s: %v", pattern, err)
	}
	var out [][]byte
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// xiphFuzzSeeds adds the files matching pattern to f's corpus.
func xiphFuzzSeeds(f *testing.F, pattern string) {
	f.Helper()
	for _, b := range fixtureSeeds(f, pattern) {
		f.Add(b)
	}
}

// xiphCheckReport checks what holds for any report: an error is in the
// report, and a report without one is sane.
func xiphCheckReport(t *testing.T, file []byte, rep *Report, err error) {
	t.Helper()
	if err != nil {
		if rep == nil || rep.Error == "" {
			t.Fatalf("error %v without a report carrying it", err)
		}
		return
	}
	// Only ASF and FLV make size-only reports (see Probe).
	sized := sizeOnly(rep) && (rep.Container == "asf" || rep.Container == "flv")
	if !(rep.Duration > 0) && !sized || math.IsInf(rep.Duration, 0) || rep.BitrateAvg < 0 || rep.BitratePeak < 0 {
		t.Fatalf("report %+v", rep)
	}
	if c := rep.Cover; c != nil && (c.Offset < 0 || c.Size < 0 || c.Offset+c.Size > int64(len(file))) {
		t.Fatalf("cover %+v outside a file of %d bytes", c, len(file))
	}
}

// FuzzFLAC: run for a minute with
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -fuzz=FuzzFLAC -fuzztime=60s ./internal/probe/
func FuzzFLAC(f *testing.F) {
	xiphFuzzSeeds(f, "testdata/flac/*.flac")
	f.Add(hugeFLAC())
	f.Fuzz(func(t *testing.T, file []byte) {
		rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.flac", Options{})
		xiphCheckReport(t, file, rep, err)
		// A budget below the audio's size samples it instead of a scan.
		rep, err = Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.flac", Options{MaxBytes: int64(len(file))/2 + 1})
		xiphCheckReport(t, file, rep, err)
	})
}
