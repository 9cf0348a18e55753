package web

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mustserv/internal/config"
	"mustserv/internal/index"
	"mustserv/internal/library"
	"mustserv/internal/pace"
	"mustserv/internal/probe"
	"mustserv/internal/stream"
)

// TestStreamRateFromIndex: a stream is paced by the peak the index holds
// for the file as it is now, without probing it. The file here cannot be
// probed (random bytes), so without the index it would need the unknown
// rate (8 Mbit/s), which a 1 Mbit/s budget refuses; with the index's
// 400 kbit/s (× 1.25) it fits. A file changed since it was indexed is not
// believed.
func TestStreamRateFromIndex(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// 10 s at 400 kbit/s: the file's bytes per second match the peak.
	data := make([]byte, 500_000)
	for i := range data {
		data[i] = byte(rand.N(256))
	}
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, name := range []string{"indexed.mp3", "changed.mp3", "unknown.mp3"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	tree, err := library.Open([]config.Library{{Name: "M", Path: dir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	x, err := index.Open(t.Context(), filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	rep := probe.Report{Container: "mp3", Duration: 10, BitrateAvg: 400_000, BitratePeak: 400_000}
	b := &index.Batch{}
	for name, mtime := range map[string]time.Time{"indexed.mp3": when, "changed.mp3": when.Add(-time.Hour)} {
		b.Puts = append(b.Puts, index.Record{Library: "M", Path: name, Kind: "audio", Size: int64(len(data)),
			ModTime: mtime, Report: &rep})
	}
	if err := x.Apply(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	pacer := pace.New(pace.Options{Uplink: 125_000})
	t.Cleanup(func() { pacer.Close() })
	srv := httptest.NewServer(New(Options{
		Tree:   tree,
		Stream: stream.NewPaced(time.Minute, stream.Pacing{Pacer: pacer}),
		Pace: func(string) stream.Policy {
			return stream.Policy{Enabled: true, Factor: 1.25, Burst: time.Second, UnknownRate: 8_000_000}
		},
		Index: x,
	}))
	t.Cleanup(srv.Close)
	for name, want := range map[string]int{"indexed.mp3": http.StatusPartialContent,
		"changed.mp3": http.StatusServiceUnavailable, "unknown.mp3": http.StatusServiceUnavailable} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/stream/M/"+name, nil)
		req.Header.Set("Range", "bytes=499000-") // the last KB: quick either way
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %s, want %d", name, resp.Status, want)
		}
	}
}
