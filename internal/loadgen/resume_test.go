package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// origin serves a file with http.ServeContent (Range, If-Range, ETag,
// Last-Modified), as MuStServ does, and records each request's headers.
// A test changes single answers with cut and serve.
type origin struct {
	data    []byte
	etag    string // none if empty
	modtime time.Time
	// cut ends request n's body after this many bytes, unless 0, and
	// closes the connection, as a server killed in the middle does.
	cut func(n int) int64
	// serve answers request n instead, when it returns true.
	serve func(n int, w http.ResponseWriter, r *http.Request) bool

	mu   sync.Mutex
	reqs []http.Header
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	n := len(o.reqs)
	o.reqs = append(o.reqs, r.Header.Clone())
	o.mu.Unlock()
	if o.serve != nil && o.serve(n, w, r) {
		return
	}
	if o.cut != nil {
		if c := o.cut(n); c > 0 {
			w = &cutWriter{ResponseWriter: w, left: c}
		}
	}
	serveFile(w, r, o.data, o.etag, o.modtime)
}

func serveFile(w http.ResponseWriter, r *http.Request, data []byte, etag string, modtime time.Time) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	http.ServeContent(w, r, "a.mp3", modtime, bytes.NewReader(data))
}

// header returns header key of each request, in order.
func (o *origin) header(key string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var v []string
	for _, h := range o.reqs {
		v = append(v, h.Get(key))
	}
	return v
}

// cutWriter passes left bytes of the body on, flushes them, and then
// aborts the response: the client sees the connection close mid-body.
type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) < c.left {
		c.left -= int64(len(p))
		return c.ResponseWriter.Write(p)
	}
	c.ResponseWriter.Write(p[:c.left])
	http.NewResponseController(c.ResponseWriter).Flush()
	panic(http.ErrAbortHandler)
}

func (c *cutWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// pattern returns size bytes that differ at every offset from their
// neighbours' (251 is prime): bytes from a wrong offset do not match.
func pattern(size int, seed byte) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i%251) + seed
	}
	return b
}

// verifier is a Config.Verify against data that counts the bytes it
// checked.
type verifier struct {
	data []byte
	n    atomic.Int64
}

func (v *verifier) verify(_ string, off int64, p []byte) error {
	if off < 0 || off+int64(len(p)) > int64(len(v.data)) {
		return fmt.Errorf("bytes %d..%d are outside the file (%d)", off, off+int64(len(p)), len(v.data))
	}
	want := v.data[off : off+int64(len(p))]
	if !bytes.Equal(p, want) {
		for i := range p {
			if p[i] != want[i] {
				return fmt.Errorf("byte %d is %#x, want %#x", off+int64(i), p[i], want[i])
			}
		}
	}
	v.n.Add(int64(len(p)))
	return nil
}

const (
	fileLen = 300_000
	cutLen  = 100_000
	etag1   = `"v1"`
)

func cutFirstAt(n int) int64 {
	if n == 0 {
		return cutLen
	}
	return 0
}

// A body cut short is resumed from the next byte, with If-Range, and
// every byte is the file's; without Resume the player fails as before.
func TestResumeOverTCP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		etag        string
		resume      int
		wantStatus  string
		wantErr     string
		wantRanges  []string
		wantIfRange []string
	}{
		{
			name: "resumed", etag: etag1, resume: 2, wantStatus: StatusOK,
			wantRanges: []string{"bytes=0-", "bytes=100000-"}, wantIfRange: []string{"", etag1},
		},
		{
			// A weak ETag is no If-Range (RFC 9110, section 13.1.5); the
			// resume checks it all the same.
			name: "weak ETag", etag: `W/"v1"`, resume: 2, wantStatus: StatusOK,
			wantRanges: []string{"bytes=0-", "bytes=100000-"}, wantIfRange: []string{"", ""},
		},
		{
			name: "no resume", etag: etag1, wantStatus: StatusFailed,
			wantErr:    "body cut at byte 100000: unexpected EOF",
			wantRanges: []string{"bytes=0-"}, wantIfRange: []string{""},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := pattern(fileLen, 0)
			o := &origin{data: data, etag: tc.etag, cut: cutFirstAt}
			ts := httptest.NewServer(o)
			t.Cleanup(ts.Close)
			v := &verifier{data: data}
			rep, err := Run(t.Context(), Config{
				URLs: []Target{{URL: ts.URL + "/a.mp3", Bitrate: mbit}}, Resume: tc.resume,
				Verify: v.verify, Timeout: time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			p := rep.Players[0]
			wantBytes, wantResumes, wantEnd := int64(fileLen), 1, EndEOF
			if tc.wantStatus != StatusOK {
				wantBytes, wantResumes, wantEnd = cutLen, 0, EndError
			}
			if p.Status != tc.wantStatus || p.Error != tc.wantErr || p.End != wantEnd ||
				p.Bytes != wantBytes || p.Resumes != wantResumes || v.n.Load() != wantBytes {
				t.Errorf("player %+v, %d bytes verified; want %s %q, end %s, %d bytes verified, %d resumes",
					p, v.n.Load(), tc.wantStatus, tc.wantErr, wantEnd, wantBytes, wantResumes)
			}
			if rep.Summary.Resumes != wantResumes {
				t.Errorf("summary resumes = %d, want %d", rep.Summary.Resumes, wantResumes)
			}
			if diff := cmp.Diff(tc.wantRanges, o.header("Range")); diff != "" {
				t.Errorf("Range (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantIfRange, o.header("If-Range")); diff != "" {
				t.Errorf("If-Range (-want +got):\n%s", diff)
			}
		})
	}
}

// A resume answered with another version of the file, or from another
// offset, fails the player before a byte of it is taken.
func TestResumeOtherVersion(t *testing.T) {
	t.Parallel()
	m1 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m2 := m1.Add(time.Hour)
	v2 := pattern(fileLen, 1)
	for _, tc := range []struct {
		name  string
		etag  string // of the first response
		serve func(w http.ResponseWriter, r *http.Request)
		want  string
	}{
		{
			// The server honours If-Range: another ETag sends it all.
			name: "new ETag, If-Range honoured", etag: etag1,
			serve: func(w http.ResponseWriter, r *http.Request) { serveFile(w, r, v2, `"v2"`, m1) },
			want:  "resume at byte 100000: HTTP 200 OK to a Range request",
		},
		{
			// A node that ignores If-Range and has another version.
			name: "new ETag, If-Range ignored", etag: etag1,
			serve: func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("If-Range")
				serveFile(w, r, v2, `"v2"`, m1)
			},
			want: `resume at byte 100000: ETag "\"v2\"", the first response's was "\"v1\""`,
		},
		{
			// No ETag: no If-Range either, but Last-Modified tells.
			name:  "new Last-Modified",
			serve: func(w http.ResponseWriter, r *http.Request) { serveFile(w, r, v2, "", m2) },
			want:  "resume at byte 100000: Last-Modified",
		},
		{
			name: "other size", etag: etag1,
			serve: func(w http.ResponseWriter, r *http.Request) { serveFile(w, r, pattern(2*fileLen, 0), etag1, m1) },
			want:  "resume at byte 100000: file size 600000, the first response's was 300000",
		},
		{
			name: "Content-Range elsewhere", etag: etag1,
			serve: func(w http.ResponseWriter, r *http.Request) {
				r.Header.Set("Range", "bytes=0-")
				serveFile(w, r, pattern(fileLen, 0), etag1, m1)
			},
			want: `resume at byte 100000: Content-Range "bytes 0-299999/300000" does not start at the byte asked for`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := pattern(fileLen, 0)
			o := &origin{data: data, etag: tc.etag, modtime: m1, cut: cutFirstAt,
				serve: func(n int, w http.ResponseWriter, r *http.Request) bool {
					if n == 0 {
						return false
					}
					tc.serve(w, r)
					return true
				}}
			ts := httptest.NewServer(o)
			t.Cleanup(ts.Close)
			v := &verifier{data: data}
			rep, err := Run(t.Context(), Config{
				URLs: []Target{{URL: ts.URL + "/a.mp3", Bitrate: mbit}}, Resume: 3,
				Verify: v.verify, Timeout: time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			p := rep.Players[0]
			if p.Status != StatusFailed || !strings.HasPrefix(p.Error, tc.want) || !strings.HasSuffix(p.Error, "not spliced") ||
				p.WrongBytes || p.Bytes != cutLen || v.n.Load() != cutLen || p.Resumes != 1 {
				t.Errorf("player %+v, %d bytes verified; want failed with %q..., not spliced, after %d bytes and 1 resume",
					p, v.n.Load(), tc.want, cutLen)
			}
		})
	}
}

// Verify sees every byte at its offset: a server that flips one fails
// that player, and only it.
func TestVerifyOverTCP(t *testing.T) {
	t.Parallel()
	const flip = 200_001
	data := pattern(fileLen, 0)
	bad := bytes.Clone(data)
	bad[flip] ^= 0x40
	ts := httptest.NewServer(&origin{data: data, serve: func(_ int, w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/flip.mp3" {
			return false
		}
		serveFile(w, r, bad, "", time.Time{})
		return true
	}})
	t.Cleanup(ts.Close)
	v := &verifier{data: data}
	rep, err := Run(t.Context(), Config{
		URLs:    []Target{{URL: ts.URL + "/a.mp3", Bitrate: mbit}, {URL: ts.URL + "/flip.mp3", Bitrate: mbit}},
		Players: 2, Verify: v.verify, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Players[0]; p.Status != StatusOK || p.End != EndEOF || p.Bytes != fileLen || p.WrongBytes {
		t.Errorf("player 0 %+v, want ok to the end", p)
	}
	p := rep.Players[1]
	wantErr := fmt.Sprintf("byte %d is %#x, want %#x", flip, bad[flip], data[flip])
	if p.Status != StatusFailed || p.End != EndError || !p.WrongBytes ||
		!strings.HasPrefix(p.Error, "wrong bytes: ") || !strings.HasSuffix(p.Error, wantErr) || p.Bytes > flip+readSize {
		t.Errorf("player 1 %+v, want failed with wrong bytes ending %q", p, wantErr)
	}
	if s := rep.Summary; s.WrongBytes != 1 || s.Failed != 1 || s.OK != 1 {
		t.Errorf("summary %+v, want 1 ok, 1 failed with wrong bytes", s)
	}
}

// serveOn starts a test server for h on host.
func serveOn(t *testing.T, host string, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(h)
	ts.Listener.Close()
	ts.Listener = l
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// redirector answers every request with a 307 to the same path on base
// (or to itself if base is empty), and counts them.
type redirector struct {
	base    string
	n       atomic.Int64
	cookies atomic.Int64 // requests with a Cookie
}

func (rd *redirector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rd.n.Add(1)
	if r.Header.Get("Cookie") != "" {
		rd.cookies.Add(1)
	}
	http.Redirect(w, r, rd.base+r.URL.Path, http.StatusTemporaryRedirect)
}

// A 307 to another host is followed on the first request and on each
// resume and seek, which ask the player's URL again; Range and If-Range
// survive it.
func TestRedirectOverTCP(t *testing.T) {
	t.Parallel()
	// On Linux all of 127.0.0.0/8 is the loopback: another host, for
	// which Go's client drops the cookies it was given.
	other := "127.0.0.1"
	if runtime.GOOS == "linux" {
		other = "127.0.0.2"
	}
	t.Run("resume", func(t *testing.T) {
		t.Parallel()
		data := pattern(fileLen, 0)
		o := &origin{data: data, etag: etag1, cut: cutFirstAt}
		b := serveOn(t, other, o)
		rd := &redirector{base: b.URL}
		a := httptest.NewServer(rd)
		t.Cleanup(a.Close)
		v := &verifier{data: data}
		rep, err := Run(t.Context(), Config{
			URLs: []Target{{URL: a.URL + "/a.mp3", Bitrate: mbit}}, Resume: 1, Verify: v.verify,
			Headers: map[string]string{"X-Client": "bench", "Cookie": "session=1"}, Timeout: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		p := rep.Players[0]
		if p.Status != StatusOK || p.End != EndEOF || p.Bytes != fileLen || v.n.Load() != fileLen ||
			p.Resumes != 1 || p.Redirects != 2 || rd.n.Load() != 2 {
			t.Errorf("player %+v, %d bytes verified, %d requests redirected; want ok, %d bytes verified, 1 resume, 2 redirects",
				p, v.n.Load(), rd.n.Load(), fileLen)
		}
		if s := rep.Summary; s.Redirects != 2 || s.Resumes != 1 {
			t.Errorf("summary %+v, want 2 redirects, 1 resume", s)
		}
		for key, want := range map[string][]string{
			"Range":    {"bytes=0-", "bytes=100000-"},
			"If-Range": {"", etag1},
			"X-Client": {"bench", "bench"},
		} {
			if diff := cmp.Diff(want, o.header(key)); diff != "" {
				t.Errorf("%s at the redirect's target (-want +got):\n%s", key, diff)
			}
		}
		if other != "127.0.0.1" {
			if diff := cmp.Diff([]string{"", ""}, o.header("Cookie")); diff != "" || rd.cookies.Load() != 2 {
				t.Errorf("Cookie sent to the first host %d times, want 2; at the other host (-want +got):\n%s", rd.cookies.Load(), diff)
			}
		}
	})
	t.Run("seeks", func(t *testing.T) {
		t.Parallel()
		const bitrate = 4_000_000
		const size = 3600 * bitrate / 8
		srv := &mediaServer{size: size, chunk: 64 << 10, at: every(time.Second * (64 << 10) / (bitrate / 4))}
		b := serveOn(t, other, srv)
		rd := &redirector{base: b.URL}
		a := httptest.NewServer(rd)
		t.Cleanup(a.Close)
		rep, err := Run(t.Context(), Config{
			URLs:     []Target{{URL: a.URL + "/a.mp3", Bitrate: bitrate}},
			WatchMin: 1500 * time.Millisecond, SeekEvery: 300 * time.Millisecond, Seed: 3,
			Startup: 250 * time.Millisecond, Rebuffer: 250 * time.Millisecond, Timeout: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		p := rep.Players[0]
		ranges := srv.requested()
		if p.Status != StatusOK || p.Seeks < 2 || len(ranges) != 1+p.Seeks ||
			p.Redirects != 1+p.Seeks || rd.n.Load() != int64(1+p.Seeks) {
			t.Fatalf("player %+v made requests %q, %d redirected; want ok, 2 seeks or more, each redirected once",
				p, ranges, rd.n.Load())
		}
		for i, r := range ranges {
			if m := openRange.FindStringSubmatch(r); m == nil || (i == 0) != (r == "bytes=0-") {
				t.Errorf("range %d at the redirect's target %q, want bytes=0- then a seek's bytes=N-", i, r)
			}
		}
	})
}

// Redirects are followed up to 5 hops: a loop fails the player, and is
// not worth a resume.
func TestRedirectLoop(t *testing.T) {
	t.Parallel()
	rd := &redirector{}
	ts := httptest.NewServer(rd)
	t.Cleanup(ts.Close)
	rep, err := Run(t.Context(), Config{
		URLs: []Target{{URL: ts.URL + "/a.mp3", Bitrate: mbit}}, Resume: 3, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Players[0]
	if p.Status != StatusFailed || !strings.HasSuffix(p.Error, "stopped after 5 redirects") ||
		p.Redirects != 5 || p.Resumes != 0 || rd.n.Load() != 6 {
		t.Errorf("player %+v after %d requests; want failed after 6 requests, 5 redirects, no resume", p, rd.n.Load())
	}
}

// A connection refused is tried again after 0.1 s, then 0.2 s: startup
// counts from the first attempt.
func TestResumeRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		resume int
		want   Player
	}{
		{3, Player{Status: StatusOK, End: EndEOF, HTTP: http.StatusPartialContent, StartupMS: ptr(800),
			Bytes: 4 * secOfMbit, WatchedSeconds: 4, Trace: []int64{2 * secOfMbit, 2 * secOfMbit}, Resumes: 2}},
		{1, Player{Status: StatusFailed, End: EndError, Trace: []int64{}, Resumes: 1,
			Error: `Get "http://media.test/a.mp3": dial tcp: connection refused (no resume left of 1)`}},
	} {
		t.Run(fmt.Sprint("resume ", tc.resume), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				l := newPipeListener()
				srv := &http.Server{Handler: &mediaServer{size: 4 * secOfMbit, chunk: secOfMbit, at: every(500 * time.Millisecond)}}
				go srv.Serve(l)
				defer srv.Close()
				var dials atomic.Int64
				dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
					if dials.Add(1) <= 2 {
						return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
					}
					return l.dial(ctx, network, addr)
				}
				rep, err := run(t.Context(), Config{URLs: []Target{{URL: testURL, Bitrate: mbit}}, Resume: tc.resume}, dial)
				if err != nil {
					t.Fatal(err)
				}
				want := tc.want
				want.URL, want.Bitrate, want.SeekMS = testURL, mbit, []float64{}
				if diff := cmp.Diff([]Player{want}, rep.Players); diff != "" {
					t.Errorf("players (-want +got):\n%s", diff)
				}
			})
		})
	}
}
