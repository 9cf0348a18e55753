package probe

import (
	"bytes"
	"context"
	"testing"
)

// FuzzMatroska: run for a minute with
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -fuzz=FuzzMatroska -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
//
// The seeds are the first KBs of the fixtures (their headers, metadata and
// first clusters: whole fixtures make the fuzzer slow) and a file claiming
// a huge element.
func FuzzMatroska(f *testing.F) {
	for _, b := range fixtureSeeds(f, "testdata/mkv/*") {
		f.Add(b[:min(len(b), 6<<10)])
	}
	f.Add(hugeMatroska([]byte{0x12, 0x54, 0xC3, 0x67}, 2<<30))
	f.Fuzz(func(t *testing.T, file []byte) {
		rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.mkv", Options{})
		xiphCheckReport(t, file, rep, err)
	})
}
