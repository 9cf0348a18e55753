package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/loadgen"
)

// fileServer serves size bytes with Range support, as a plain file server
// does; the players read it to the end at once.
func fileServer(t *testing.T, size int, seen chan<- http.Header) *httptest.Server {
	t.Helper()
	data := bytes.Repeat([]byte{0xff}, size)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen <- r.Header.Clone()
		}
		http.ServeContent(w, r, "a.mp3", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestRunSummary(t *testing.T) {
	t.Parallel()
	seen := make(chan http.Header, 2)
	ts := fileServer(t, 100_000, seen)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{
		"-url", ts.URL + "/a.mp3@320k", "-players", "2", "-summary", "-header", "X-Client: bench 1",
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var s loadgen.Summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("stdout is no summary: %v\n%s", err, stdout.String())
	}
	if s.Players != 2 || s.OK != 2 || s.Bytes != 200_000 {
		t.Errorf("summary = %+v, want 2 ok players that read 100,000 bytes each", s)
	}
	if !strings.HasPrefix(stderr.String(), "mustload: 2 players: 2 ok, 0 rejected, 0 failed;") {
		t.Errorf("stderr = %q, want the one-line summary", stderr.String())
	}
	for range 2 {
		h := <-seen
		if h.Get("X-Client") != "bench 1" || h.Get("Range") != "bytes=0-" {
			t.Errorf("request headers %v, want X-Client and Range bytes=0-", h)
		}
	}
}

func TestRunReportFile(t *testing.T) {
	t.Parallel()
	ts := fileServer(t, 50_000, nil)
	out := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-url", ts.URL + "/a.mp3", "-bitrate", "1M", "-out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing with -out", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep loadgen.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Players) != 1 || rep.Players[0].Bitrate != 1_000_000 || rep.Players[0].Bytes != 50_000 {
		t.Errorf("report = %+v, want one player at 1 Mbit/s that read 50,000 bytes", rep)
	}
}

// With -resume, a body cut short is requested again from the next byte,
// and the summary counts it.
func TestRunResume(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte{0xff}, 100_000)
	var first atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			// Half the body, then the connection closes.
			w.Header().Set("Content-Length", "100000")
			w.Write(data[:50_000])
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		}
		http.ServeContent(w, r, "a.mp3", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(ts.Close)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-url", ts.URL + "/a.mp3@320k", "-resume", "2", "-summary"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var s loadgen.Summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("stdout is no summary: %v\n%s", err, stdout.String())
	}
	if s.OK != 1 || s.Resumes != 1 || s.Bytes != 100_000 {
		t.Errorf("summary = %+v, want 1 ok player that read 100,000 bytes with 1 resume", s)
	}
	if !strings.Contains(stderr.String(), "; 1 resumes, 0 redirects") {
		t.Errorf("stderr = %q, want the resumes counted", stderr.String())
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no URL", nil, "no -url given"},
		{"no bitrate", []string{"-url", "http://127.0.0.1:1/a.mp3"}, "has no bitrate"},
		{"bad bitrate", []string{"-url", "http://127.0.0.1:1/a.mp3", "-bitrate", "fast"}, "-bitrate"},
		{"not http", []string{"-url", "ftp://127.0.0.1/a.mp3@320k"}, "not an http"},
		{"bad watch", []string{"-url", "http://127.0.0.1:1/a@1M", "-watch", "40s-20s"}, "-watch"},
		{"bad header", []string{"-url", "http://127.0.0.1:1/a@1M", "-header", "no colon"}, "header"},
		{"stray argument", []string{"-url", "http://127.0.0.1:1/a@1M", "extra"}, "unexpected argument"},
		{"max buffer below startup", []string{"-url", "http://127.0.0.1:1/a@1M", "-max-buffer", "1s"}, "max buffer"},
		{"bad local address", []string{"-url", "http://127.0.0.1:1/a@1M", "-local-addr", "here"}, "local address"},
		{"negative resume", []string{"-url", "http://127.0.0.1:1/a@1M", "-resume", "-1"}, "resume -1 is outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tc.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 2 {
				t.Errorf("run(%q) = %v, want a usage error about %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		def  int64
		want loadgen.Target
		err  bool
	}{
		{in: "http://127.0.0.1:8000/stream/Music/a.mp3@320k", want: loadgen.Target{URL: "http://127.0.0.1:8000/stream/Music/a.mp3", Bitrate: 320_000}},
		{in: "http://h/a.mkv@2.5M", want: loadgen.Target{URL: "http://h/a.mkv", Bitrate: 2_500_000}},
		{in: "http://h/a.flac@1411200", want: loadgen.Target{URL: "http://h/a.flac", Bitrate: 1_411_200}},
		{in: "http://h/a.mp3", def: 128_000, want: loadgen.Target{URL: "http://h/a.mp3", Bitrate: 128_000}},
		{in: "http://user@h/a.mp3@1M", want: loadgen.Target{URL: "http://user@h/a.mp3", Bitrate: 1_000_000}},
		{in: "http://user@h/a.mp3", def: 1, want: loadgen.Target{URL: "http://user@h/a.mp3", Bitrate: 1}},
		{in: "http://h/a.mp3", err: true},
		{in: "http://h/a.mp3@0", err: true},
		{in: "@320k", err: true},
		{in: "h/a.mp3@320k", err: true},
	} {
		got, err := parseTarget(tc.in, tc.def)
		if (err != nil) != tc.err {
			t.Errorf("parseTarget(%q) error = %v, want error: %v", tc.in, err, tc.err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parseTarget(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseBitrate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{
		"320k": 320_000, "320K": 320_000, "2.5M": 2_500_000, "1G": 1_000_000_000, "96000": 96_000, "1e6": 1_000_000,
		"": 0, "k": 0, "-1k": 0, "0": 0, "0.4": 0, "inf": 0, "NaN": 0, "0x10": 0, "1_000": 0, "1m": 0, "2T": 0,
	} {
		got, err := parseBitrate(in)
		if got != want || (err != nil) != (want == 0) {
			t.Errorf("parseBitrate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestParseWatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in     string
		lo, hi time.Duration
		err    bool
	}{
		{in: "30s", lo: 30 * time.Second, hi: 30 * time.Second},
		{in: "20s-40s", lo: 20 * time.Second, hi: 40 * time.Second},
		{in: "1m30s-2m", lo: 90 * time.Second, hi: 2 * time.Minute},
		{in: "40s-20s", err: true},
		{in: "0s", err: true},
		{in: "-5s", err: true},
		{in: "30", err: true},
		{in: "10s-", err: true},
	} {
		lo, hi, err := parseWatch(tc.in)
		if (err != nil) != tc.err || lo != tc.lo || hi != tc.hi {
			t.Errorf("parseWatch(%q) = %v, %v, %v; want %v, %v, error %v", tc.in, lo, hi, err, tc.lo, tc.hi, tc.err)
		}
	}
}

// FuzzParse checks that the flag parsers never panic and that what they
// accept is usable.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:8000/stream/Music/a.mp3@320k", "http://u@h/x@2.5M", "@", "1e400k", "20s-40s",
		"X-Client: a", ": v", "-1s-2s", "9223372036854775807ns",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if tg, err := parseTarget(s, 0); err == nil {
			if tg.Bitrate < 1 || tg.Bitrate > 1e12 || !strings.HasPrefix(tg.URL, "http") || !strings.HasPrefix(s, tg.URL) {
				t.Errorf("parseTarget(%q) = %+v", s, tg)
			}
		}
		if lo, hi, err := parseWatch(s); err == nil && (lo <= 0 || hi < lo) {
			t.Errorf("parseWatch(%q) = %v, %v", s, lo, hi)
		}
		if k, v, err := parseHeader(s); err == nil && (k == "" || strings.ContainsAny(k, " \t:") || strings.ContainsAny(v, "\r\n\x00")) {
			t.Errorf("parseHeader(%q) = %q, %q", s, k, v)
		}
	})
}
