package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
)

// FuzzASF: run for a minute with
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -fuzz='^FuzzASF$' -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
//
// The seeds are the first KBs of the fixtures (the header and the first
// packets) and a header claiming more than the file holds.
func FuzzASF(f *testing.F) {
	for _, b := range fixtureSeeds(f, "testdata/asf/*") {
		f.Add(b[:min(len(b), 8<<10)])
		h := bytes.Clone(b[:min(len(b), 2<<10)])
		binary.LittleEndian.PutUint64(h[16:], 1<<31)
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.wma", Options{})
		xiphCheckReport(t, file, rep, err)
	})
}
