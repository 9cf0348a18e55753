package probe

import (
	"bytes"
	"context"
	"testing"
)

// FuzzFLV: run for a minute with
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -fuzz='^FuzzFLV$' -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
//
// The seeds are the first KBs of the fixtures (onMetaData and the first
// tags) and tags claiming more than the file holds.
func FuzzFLV(f *testing.F) {
	for _, b := range fixtureSeeds(f, "testdata/flv/*.flv") {
		f.Add(b[:min(len(b), 8<<10)])
	}
	f.Add(slicesConcat([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"), flvTag(9, 0, []byte{0x17, 1, 0, 0, 0x28}), []byte{8, 0xff, 0xff, 0xff}))
	f.Fuzz(func(t *testing.T, file []byte) {
		rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.flv", Options{})
		xiphCheckReport(t, file, rep, err)
	})
}
