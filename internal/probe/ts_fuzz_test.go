package probe

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzTS: run for a minute with
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -fuzz='^FuzzTS$' -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
//
// The seeds are the first KBs of the fixtures (tables and first PES of
// each packet layout), their tables followed by their last KBs (a PES cut
// at its start), and a small synthetic stream. The fuzzer also probes each
// input with a budget below its size, so the sampled path runs too.
func FuzzTS(f *testing.F) {
	files, err := filepath.Glob("testdata/ts/*")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/ts: %v", err)
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 8<<10)])
		ps := 188
		if filepath.Ext(path) == ".m2ts" {
			ps = 192
		}
		head, tail := b[:min(len(b), 4*ps)], b[max(0, len(b)-20*ps):]
		f.Add(slicesConcat(head, tail))
	}
	synth, _ := tsSynth(1<<33-tsClock/10, 12, func(i int) int { return 100 + 37*i })
	f.Add(synth)
	f.Fuzz(func(t *testing.T, file []byte) {
		for _, opts := range []Options{{}, {MaxBytes: int64(len(file)) / 2}} {
			rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.ts", opts)
			xiphCheckReport(t, file, rep, err)
		}
	})
}
