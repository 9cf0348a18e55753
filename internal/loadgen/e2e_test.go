package loadgen

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/testenv/origins"
)

// The tests in this file use real sockets and the real clock: what they
// assert holds however slow the machine is.

// A server that paces at 1.25x the bitrate delivers that rate to each
// player, as measured from RateFrom on.
func TestRateOverTCP(t *testing.T) {
	t.Parallel()
	const (
		bitrate = 4_000_000
		rate    = bitrate / 8 * 5 / 4 // bytes/s
		chunk   = 64 << 10
	)
	srv := &mediaServer{size: 60 * bitrate / 8, chunk: chunk, at: every(time.Second * chunk / rate)}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	rep, err := Run(t.Context(), Config{
		URLs:    []Target{{URL: ts.URL + "/a.mp3", Bitrate: bitrate}},
		Players: 3, WatchMin: 3500 * time.Millisecond, Startup: 500 * time.Millisecond,
		RateFrom: 500 * time.Millisecond, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Summary
	if s.OK != 3 || s.RateRatio.N != 3 {
		t.Fatalf("summary = %+v, want 3 ok players with a rate", s)
	}
	// The schedule is absolute, so a late chunk is sent early next time;
	// ±20% is 0.7 s of slack in the 3.4 s measured.
	if s.RateRatio.Min < 1.25*0.8 || s.RateRatio.Max > 1.25*1.2 {
		t.Errorf("rate ratio %+v, want 1.25 ± 20%%", s.RateRatio)
	}
	for _, p := range rep.Players {
		if p.End != EndWatch || p.WatchedSeconds != 3.5 {
			t.Errorf("player %d: end %s after %g s, want the watch time (3.5 s)", p.ID, p.End, p.WatchedSeconds)
		}
		var traced int64
		for _, b := range p.Trace {
			traced += b
		}
		if traced != p.Bytes {
			t.Errorf("player %d: trace sums to %d bytes, want %d", p.ID, traced, p.Bytes)
		}
	}
}

// Seeks over real connections ask for the offsets the report counts.
func TestSeeksOverTCP(t *testing.T) {
	t.Parallel()
	const bitrate = 4_000_000
	const size = 3600 * bitrate / 8
	srv := &mediaServer{size: size, chunk: 64 << 10, at: every(time.Second * (64 << 10) / (bitrate / 4))}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	rep, err := Run(t.Context(), Config{
		URLs:     []Target{{URL: ts.URL + "/a.mp3", Bitrate: bitrate}},
		WatchMin: 1500 * time.Millisecond, SeekEvery: 300 * time.Millisecond, Seed: 3,
		Startup: 250 * time.Millisecond, Rebuffer: 250 * time.Millisecond, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Players[0]
	ranges := srv.requested()
	if p.Status != StatusOK || p.Seeks < 2 || len(ranges) != 1+p.Seeks || len(p.SeekMS) != p.Seeks {
		t.Fatalf("player %+v made requests %q; want ok, 2 seeks or more, one request each", p, ranges)
	}
	if ranges[0] != "bytes=0-" {
		t.Errorf("first range %q, want bytes=0-", ranges[0])
	}
	for _, r := range ranges[1:] {
		m := openRange.FindStringSubmatch(r)
		if m == nil {
			t.Errorf("seek range %q, want bytes=N-", r)
			continue
		}
		if n, _ := strconv.ParseInt(m[1], 10, 64); n >= size {
			t.Errorf("seek range %q is past the end (%d)", r, size)
		}
	}
}

func TestStatusOverTCP(t *testing.T) {
	t.Parallel()
	busy := httptest.NewServer(&mediaServer{size: 1 << 20, chunk: 64 << 10, at: every(0),
		reject: func(int) (string, bool) { return "120", true }})
	t.Cleanup(busy.Close)
	missing := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(missing.Close)
	// A port nothing listens on any more: connections are refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/a.mp3"
	l.Close()

	rep, err := Run(t.Context(), Config{
		URLs: []Target{
			{URL: busy.URL + "/a.mp3", Bitrate: mbit},
			{URL: missing.URL + "/a.mp3", Bitrate: mbit},
			{URL: refused, Bitrate: mbit},
		},
		Players: 3, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		Status     string
		HTTP       int
		RetryAfter float64
	}
	var got []result
	for _, p := range rep.Players {
		got = append(got, result{p.Status, p.HTTP, p.RetryAfter})
	}
	want := []result{
		{StatusRejected, http.StatusServiceUnavailable, 120},
		{StatusFailed, http.StatusNotFound, 0},
		{StatusFailed, 0, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("players (-want +got):\n%s", diff)
	}
	if e := rep.Players[2].Error; !strings.Contains(e, "refused") {
		t.Errorf("error = %q, want connection refused", e)
	}
	if s := rep.Summary; s.Rejected != 1 || s.Failed != 2 || s.OK != 0 {
		t.Errorf("summary = %+v, want 1 rejected, 2 failed", s)
	}
}

// Against nginx, which does not pace: greedy players read the file to
// its end at once.
func TestNginx(t *testing.T) {
	t.Parallel()
	const size = 3 << 20
	root := t.TempDir()
	origins.WriteTree(t, root, map[string][]byte{"a.mp3": bytes.Repeat([]byte("mustload"), size/8)})
	base := origins.StartNginx(t, root)
	rep, err := Run(t.Context(), Config{
		URLs:    []Target{{URL: base + "/json/a.mp3", Bitrate: 320_000}},
		Players: 3, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Players {
		if p.Status != StatusOK || p.HTTP != http.StatusPartialContent || p.Bytes != size || p.End != EndEOF {
			t.Errorf("player %+v, want ok, 206, %d bytes, to the end of the file", p, size)
		}
	}
}
