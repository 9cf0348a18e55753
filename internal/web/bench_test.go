package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/config"
	"mustserv/internal/library"
	"mustserv/internal/stream"
)

// benchServer serves a library "media" holding small.bin (4 KiB) as
// run.go sets the server up (small-file cache, access log formatted by
// hand) with the log going to io.Discard: the formatting is measured, the
// disk is not.
func benchServer(b *testing.B, size int) *httptest.Server {
	ts := httptest.NewServer(benchHandler(b, size))
	b.Cleanup(ts.Close)
	return ts
}

func benchHandler(b *testing.B, size int) *Server {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "media")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "small.bin"), make([]byte, size), 0o644); err != nil {
		b.Fatal(err)
	}
	tree, err := library.Open([]config.Library{{Name: "media", Path: dir}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tree.Close() })
	return New(Options{
		Tree:        tree,
		Stream:      stream.New(time.Duration(config.Default().Server.WriteStall)),
		Cache:       stream.NewCache(stream.CacheLimits{}),
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		AccessLog:   true,
		AccessLogTo: io.Discard,
		WriteStall:  time.Duration(config.Default().Server.WriteStall),
	})
}

// discardWriter is a ResponseWriter that keeps nothing, so that a
// benchmark counts the handler's allocations only.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkStreamHandler is the handler alone serving a cached 4 KiB file
// (no connection, no net/http): what a request costs in this package.
func BenchmarkStreamHandler(b *testing.B) {
	h := benchHandler(b, 4<<10)
	r := httptest.NewRequest("GET", "/stream/media/small.bin", nil)
	r.RemoteAddr = "192.0.2.7:41234"
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// BenchmarkStreamSmallFile is a player fetching a 4 KiB file again and
// again over one kept-alive connection: the per-request cost of the whole
// path (routing, access log, library open, stream headers, body). Client
// and server share the process, so allocs/op counts both sides.
func BenchmarkStreamSmallFile(b *testing.B) {
	for _, tc := range []struct {
		name string
		size int
	}{
		{"4KiB", 4 << 10},
		{"64KiB", 64 << 10},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ts := benchServer(b, tc.size)
			url := ts.URL + "/stream/media/small.bin"
			c := ts.Client()
			buf := make([]byte, 64<<10)
			b.SetBytes(int64(tc.size))
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.CopyBuffer(io.Discard, resp.Body, buf)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n != int64(tc.size) {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	}
}

// BenchmarkAccessLog is the access-log middleware alone around a handler
// that writes nothing: its own allocations and formatting per request.
// "slog" goes through the logger's handler, "direct" formats the line
// itself (web.Options.AccessLogTo, what the server uses).
func BenchmarkAccessLog(b *testing.B) {
	for _, direct := range []bool{false, true} {
		name := "slog"
		var out io.Writer
		if direct {
			name, out = "direct", io.Discard
		}
		b.Run(name, func(b *testing.B) {
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			h := accessLog(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
			}), log, nil, out)
			r := httptest.NewRequest("GET", "/stream/media/small.bin", nil)
			r.RemoteAddr = "192.0.2.7:41234"
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// accessLines serves r with h behind the access-log middleware, with the
// line written through slog's handler or (direct) formatted by hand as the
// server does, and returns the log without its time and duration.
func accessLines(t *testing.T, direct bool, h http.HandlerFunc, w http.ResponseWriter, r *http.Request) string {
	t.Helper()
	var viaSlog, viaDirect strings.Builder
	log := slog.New(slog.NewTextHandler(&viaSlog, nil))
	var to io.Writer
	if direct {
		to = &viaDirect
	}
	accessLog(h, log, nil, to).ServeHTTP(w, r)
	got, other := viaSlog.String(), viaDirect.String()
	if direct {
		got, other = other, got
	}
	if other != "" {
		t.Errorf("direct=%v: the line also went the other way: %q", direct, other)
	}
	return timeAndDur.ReplaceAllString(got, "")
}

// timeAndDur matches the parts of an access line that change per run.
var timeAndDur = regexp.MustCompile(`time=\S+ | dur=\S+`)

// TestAccessLogLine pins the line the middleware writes, both ways: the
// same keys, in the same order, as Logger.LogAttrs wrote them.
func TestAccessLogLine(t *testing.T) {
	t.Parallel()
	for _, direct := range []bool{false, true} {
		r := httptest.NewRequest("GET", "/stream/a/b.mp3", nil)
		r.RemoteAddr = "192.0.2.7:41234"
		r.Header.Set("Range", "bytes=0-")
		got := accessLines(t, direct, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusPartialContent)
			w.Write([]byte("abc"))
		}, httptest.NewRecorder(), r)
		want := `level=INFO msg=request method=GET path=/stream/a/b.mp3 status=206 bytes=3 client=192.0.2.7 range="bytes=0-"` + "\n"
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("direct=%v: access log line (-want +got):\n%s", direct, diff)
		}
	}
}

// TestClientString checks the access log's shortcut against the full
// parse for every shape of RemoteAddr.
func TestClientString(t *testing.T) {
	t.Parallel()
	trusted := proxies{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name   string
		remote string
		xff    string
		p      proxies
	}{
		{"ipv4", "192.0.2.7:41234", "", nil},
		{"ipv6", "[2001:db8::1]:80", "", nil},
		{"loopback6", "[::1]:80", "", nil},
		{"mapped", "[::ffff:192.0.2.7]:80", "", nil},
		{"zone", "[fe80::1%eth0]:80", "", nil},
		{"leading zero", "192.0.02.7:80", "", nil},
		{"no port", "192.0.2.7", "", nil},
		{"garbage", "pipe", "", nil},
		{"proxy", "10.0.0.1:80", "198.51.100.9", trusted},
		{"untrusted peer", "192.0.2.7:80", "198.51.100.9", trusted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got, want := tc.p.clientString(r), tc.p.client(r).String(); got != want {
				t.Errorf("clientString(%q) = %q, want %q", tc.remote, got, want)
			}
		})
	}
}

// failingWriter is a connection that took n bytes and then broke.
type failingWriter struct {
	*httptest.ResponseRecorder
	n int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		w.ResponseRecorder.Write(p[:w.n])
		return w.n, errors.New("write: broken pipe")
	}
	w.n -= len(p)
	return w.ResponseRecorder.Write(p)
}

// TestAccessLogHeadAndCut: a HEAD line counts no body bytes (net/http
// drops them), and a response the client did not get whole says so.
func TestAccessLogHeadAndCut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		method string
		w      func() http.ResponseWriter
		want   string
	}{
		{"HEAD", "HEAD", func() http.ResponseWriter { return httptest.NewRecorder() },
			`level=INFO msg=request method=HEAD path=/x status=200 bytes=0 client=192.0.2.7 range=""` + "\n"},
		{"cut", "GET", func() http.ResponseWriter { return &failingWriter{httptest.NewRecorder(), 2} },
			`level=INFO msg=request method=GET path=/x status=200 bytes=2 client=192.0.2.7 range="" err="write: broken pipe"` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, direct := range []bool{false, true} {
				r := httptest.NewRequest(tc.method, "/x", nil)
				r.RemoteAddr = "192.0.2.7:41234"
				got := accessLines(t, direct, func(w http.ResponseWriter, r *http.Request) {
					w.Write([]byte("abc"))
				}, tc.w(), r)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("direct=%v: access log line (-want +got):\n%s", direct, diff)
				}
			}
		})
	}
}

// TestAccessLogHealthChecks: a balancer's successful health checks are not
// logged (one per second or two per node); a failing one is.
func TestAccessLogHealthChecks(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path   string
		status int
		logged bool
	}{
		{"/healthz", http.StatusOK, false},
		{"/readyz", http.StatusOK, false},
		{"/readyz", http.StatusServiceUnavailable, true},
		{"/x", http.StatusOK, true},
	} {
		for _, direct := range []bool{false, true} {
			r := httptest.NewRequest("GET", tc.path, nil)
			got := accessLines(t, direct, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
			}, httptest.NewRecorder(), r)
			if (got != "") != tc.logged {
				t.Errorf("%s answered %d, direct=%v: logged %q, want logged %v", tc.path, tc.status, direct, got, tc.logged)
			}
		}
	}
}
