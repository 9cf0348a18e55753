package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
)

// FuzzAVI: run for a minute with
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -fuzz=FuzzAVI -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
//
// The seeds are the first KBs of the fixtures (headers and first chunks),
// their headers with the start of their idx1, and a hdrl LIST claiming 2 GB.
func FuzzAVI(f *testing.F) {
	for i, b := range fixtureSeeds(f, "testdata/avi/*.avi") {
		f.Add(b[:min(len(b), 12<<10)])
		// The headers, an empty movi LIST and the start of the idx1.
		m, x := bytes.Index(b, []byte("movi")), bytes.LastIndex(b, []byte("idx1"))
		if m >= 8 && x > m {
			seed := slicesConcat(b[:m-4], le32(4), []byte("movi"), []byte("idx1"), le32(64*16))
			f.Add(append(seed, b[x+8:min(len(b), x+8+64*16)]...))
		}
		if i == 0 {
			h := bytes.Clone(b[:min(len(b), 1<<10)])
			if j := bytes.Index(h, []byte("hdrl")); j >= 4 {
				binary.LittleEndian.PutUint32(h[j-4:], 1<<31)
				f.Add(h)
			}
		}
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.avi", Options{})
		xiphCheckReport(t, file, rep, err)
	})
}
