package probe

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzMP4: run for a minute with
//
//	GOTOOLCHAIN=go1.27.3 go test -run='^$' -fuzz='^FuzzMP4$' -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
//
// The seeds are the first 8 KiB of each fixture (the headers, the moov of
// a faststart file, the first fragments), the moov of the file with moov
// at the end behind an empty mdat, and the synthetic files of the tests.
func FuzzMP4(f *testing.F) {
	files, err := filepath.Glob("testdata/mp4/*")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/mp4: %v", err)
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 8<<10)])
		if i := bytes.LastIndex(b, []byte("moov")); filepath.Base(path) == "h264-aac-moovend.mp4" && i >= 4 {
			f.Add(slicesConcat(mp4Box("ftyp", []byte("isom"), be32(0)), mp4Box("mdat"), b[i-4:]))
		}
	}
	f.Add(mp4Synthetic(false))
	f.Add(mp4Synthetic(true))
	f.Fuzz(func(t *testing.T, file []byte) {
		rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.mp4", Options{})
		xiphCheckReport(t, file, rep, err)
	})
}
