package probe

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzMPEGPS: run for a minute with
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -fuzz='^FuzzMPEGPS$' -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
//
// The seeds are the first and last KBs of the fixtures. Each input is
// probed whole, and under a budget of a third of its size, which takes
// the sampled path.
func FuzzMPEGPS(f *testing.F) {
	files, err := filepath.Glob("testdata/mpegps/*")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/mpegps: %v", err)
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(slicesConcat(b[:min(len(b), 8<<10)], b[max(0, len(b)-4<<10):]))
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		for _, opts := range []Options{{}, {MaxBytes: int64(len(file)/3 + 1)}} {
			rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.mpg", opts)
			xiphCheckReport(t, file, rep, err)
		}
	})
}
