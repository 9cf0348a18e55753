package loadgen

import (
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	t.Parallel()
	players := []Player{
		{Status: StatusOK, Bitrate: 1000, StartupMS: ptr(100), RateBPS: ptr(1250), Bytes: 10, SeekMS: []float64{30, 10}},
		{Status: StatusOK, Bitrate: 1000, StartupMS: ptr(300), RateBPS: ptr(1100), Bytes: 20, Stalls: 2, StallSeconds: 1.5},
		{Status: StatusOK, Bitrate: 2000, StartupMS: ptr(200), RateBPS: ptr(3000), Bytes: 30, SeekMS: []float64{20}},
		{Status: StatusOK, Bitrate: 1000, Bytes: 5, Resumes: 2, Redirects: 3}, // never started, no rate
		{Status: StatusRejected, RetryAfter: 5, Resumes: 1},
		{Status: StatusFailed, Error: "HTTP 404 Not Found"},
		{Status: StatusFailed, Error: "wrong bytes: 10 bytes at offset 0: byte 3", WrongBytes: true, Redirects: 1},
	}
	want := Summary{
		Players: 7, OK: 4, Rejected: 1, Failed: 2, StallFree: 2, Stalls: 2, StallSeconds: 1.5,
		// Nearest rank of 3 values: p50 is the 2nd, p95 and p99 the 3rd.
		StartupMS: Quantiles{N: 3, P50: 200, P95: 300, P99: 300, Max: 300},
		SeekMS:    Quantiles{N: 3, P50: 20, P95: 30, P99: 30, Max: 30},
		Bytes:     65,
		Duration:  12.346,
		RateRatio: Ratio{N: 3, Min: 1.1, Median: 1.25, Max: 1.5},
		Resumes:   3, Redirects: 4, WrongBytes: 1,
	}
	if diff := cmp.Diff(want, summarize(players, 12345678*time.Microsecond)); diff != "" {
		t.Errorf("summarize (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Summary{}, summarize(nil, 0)); diff != "" {
		t.Errorf("summarize(nil) (-want +got):\n%s", diff)
	}
}

func TestRank(t *testing.T) {
	t.Parallel()
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		p    int
		v    []float64
		want float64
	}{
		{50, v, 50}, {95, v, 95}, {99, v, 99}, {100, v, 100},
		{50, []float64{7}, 7}, {99, []float64{7}, 7},
		{50, []float64{1, 2}, 1}, {95, []float64{1, 2}, 2},
	} {
		if got := rank(tc.v, tc.p); got != tc.want {
			t.Errorf("rank(%d values, %d) = %g, want %g", len(tc.v), tc.p, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{"0", 0, true},
		{"Fri, 02 Jan 2026 03:04:35 GMT", 30 * time.Second, true},
		{"Fri, 02 Jan 2026 03:00:00 GMT", 0, true}, // in the past: at once
		{"", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
	} {
		got, ok := retryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFileSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		header string
		length int64
		want   int64
	}{
		{http.StatusPartialContent, "bytes 100-999/1000", 900, 1000},
		{http.StatusPartialContent, "bytes 0-99/*", 100, -1},
		{http.StatusPartialContent, "", 100, -1},
		{http.StatusPartialContent, "items 0-1/2", 2, -1},
		{http.StatusOK, "", 5000, 5000},
		{http.StatusOK, "", -1, -1},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}, ContentLength: tc.length}
		if tc.header != "" {
			resp.Header.Set("Content-Range", tc.header)
		}
		if got := fileSize(resp); got != tc.want {
			t.Errorf("fileSize(%d, %q, %d) = %d, want %d", tc.status, tc.header, tc.length, got, tc.want)
		}
	}
}

func TestContentRange(t *testing.T) {
	t.Parallel()
	type cr struct {
		First, Last, Size int64
		OK                bool
	}
	for in, want := range map[string]cr{
		"bytes 100-999/1000": {100, 999, 1000, true},
		"bytes 0-0/1":        {0, 0, 1, true},
		"bytes 0-99/*":       {0, 99, -1, true},
		"bytes 0-99/99":      {}, // past the end
		"bytes 5-4/10":       {},
		"bytes -5-9/10":      {},
		"bytes */1000":       {}, // a 416's
		"bytes 0-99":         {},
		"items 0-1/2":        {},
		"bytes  0-1/2":       {},
		"":                   {},
	} {
		var got cr
		got.First, got.Last, got.Size, got.OK = contentRange(in)
		if got != want {
			t.Errorf("contentRange(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func FuzzContentRange(f *testing.F) {
	for _, s := range []string{"bytes 100-999/1000", "bytes 0-99/*", "bytes */1000", "bytes 9223372036854775807-0/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, size, ok := contentRange(s)
		if ok && (first < 0 || last < first || (size != -1 && size <= last)) {
			t.Errorf("contentRange(%q) = %d, %d, %d", s, first, last, size)
		}
	})
}

func TestSpan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status     int
		cr         string
		length     int64
		start, end int64
	}{
		{http.StatusPartialContent, "bytes 100-999/1000", 900, 100, 1000},
		{http.StatusPartialContent, "bytes 100-999/1000", -1, 100, 1000}, // delimited by the close
		{http.StatusPartialContent, "", 900, 7, 907},                     // from the Range asked
		{http.StatusPartialContent, "", -1, 7, -1},
		{http.StatusOK, "", 5000, 0, 5000},
		{http.StatusOK, "", -1, 0, -1},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}, ContentLength: tc.length}
		if tc.cr != "" {
			resp.Header.Set("Content-Range", tc.cr)
		}
		if start, end := span(resp, 7); start != tc.start || end != tc.end {
			t.Errorf("span(%d, %q, %d) = %d, %d; want %d, %d", tc.status, tc.cr, tc.length, start, end, tc.start, tc.end)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	got, err := Config{URLs: []Target{{URL: testURL, Bitrate: mbit}}, Players: 10, Join: time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		URLs: []Target{{URL: testURL, Bitrate: mbit}}, Players: 10, Join: time.Second,
		WatchMin: 30 * time.Second, WatchMax: 30 * time.Second, Startup: 2 * time.Second, Rebuffer: time.Second,
		RateFrom: 10 * time.Second, Timeout: 9*time.Second + 60*time.Second + 30*time.Second,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	for name, c := range map[string]Config{
		"no URL":           {},
		"no bitrate":       {URLs: []Target{{URL: testURL}}},
		"huge bitrate":     {URLs: []Target{{URL: testURL, Bitrate: 2 * maxBitrate}}},
		"negative join":    {URLs: []Target{{URL: testURL, Bitrate: mbit}}, Join: -time.Second},
		"too many":         {URLs: []Target{{URL: testURL, Bitrate: mbit}}, Players: maxPlayers + 1},
		"small buffer":     {URLs: []Target{{URL: testURL, Bitrate: mbit}}, MaxBuffer: time.Second},
		"bad local addr":   {URLs: []Target{{URL: testURL, Bitrate: mbit}}, LocalAddr: "127.0.0.1:80"},
		"IPv6 local pool":  {URLs: []Target{{URL: testURL, Bitrate: mbit}}, LocalAddr: "::1/120"},
		"negative resume":  {URLs: []Target{{URL: testURL, Bitrate: mbit}}, Resume: -1},
		"too many resumes": {URLs: []Target{{URL: testURL, Bitrate: mbit}}, Resume: maxResumes + 1},
	} {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestLocalAddrs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"127.0.0.2", []string{"127.0.0.2", "127.0.0.2", "127.0.0.2"}},
		{"::1", []string{"::1", "::1", "::1"}},
		{"127.0.0.0/30", []string{"127.0.0.1", "127.0.0.2", "127.0.0.1"}},
		{"127.0.1.9/24", []string{"127.0.1.1", "127.0.1.2", "127.0.1.3"}},
		{"127.0.0.4/31", []string{"127.0.0.4", "127.0.0.5", "127.0.0.4"}},
	} {
		f, err := localAddrs(tc.in)
		if err != nil {
			t.Errorf("localAddrs(%q): %v", tc.in, err)
			continue
		}
		var got []string
		for i := range 3 {
			got = append(got, f(i).(*net.TCPAddr).IP.String())
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("localAddrs(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// Players connect from the source addresses they are given (on Linux,
// all of 127.0.0.0/8 is the loopback).
func TestLocalAddrOverTCP(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("only Linux answers on all of 127.0.0.0/8")
	}
	var mu sync.Mutex
	var from []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		from = append(from, host)
		mu.Unlock()
		w.Write(make([]byte, 1000))
	}))
	t.Cleanup(ts.Close)
	rep, err := Run(t.Context(), Config{
		URLs: []Target{{URL: ts.URL, Bitrate: mbit}}, Players: 3, LocalAddr: "127.0.0.0/30", Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.OK != 3 {
		t.Fatalf("summary %+v, want 3 ok", rep.Summary)
	}
	slices.Sort(from)
	if diff := cmp.Diff([]string{"127.0.0.1", "127.0.0.1", "127.0.0.2"}, from); diff != "" {
		t.Errorf("source addresses (-want +got):\n%s", diff)
	}
}
