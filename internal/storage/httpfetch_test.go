package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	type parsed struct {
		First, Last, Total int64
		OK                 bool
	}
	for _, tc := range []struct {
		name, in string
		want     parsed
	}{
		{"range", "bytes 4-7/16", parsed{4, 7, 16, true}},
		{"one byte", "bytes 0-0/1", parsed{0, 0, 1, true}},
		{"last byte", "bytes 15-15/16", parsed{15, 15, 16, true}},
		{"empty", "", parsed{}},
		{"no unit", "4-7/16", parsed{}},
		{"other unit", "items 4-7/16", parsed{}},
		{"unsatisfied", "bytes */16", parsed{}},
		{"unknown total", "bytes 4-7/*", parsed{}},
		{"no total", "bytes 4-7", parsed{}},
		{"no last", "bytes 4-/16", parsed{}},
		{"negative first", "bytes -4-7/16", parsed{}},
		{"last before first", "bytes 7-4/16", parsed{}},
		{"last past the total", "bytes 4-16/16", parsed{}},
		{"spaces", "bytes 4 - 7/16", parsed{}},
		{"plus sign", "bytes +4-7/16", parsed{4, 7, 16, true}}, // strconv.ParseInt's reading
		{"overflow", "bytes 0-1/99999999999999999999", parsed{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got parsed
			got.First, got.Last, got.Total, got.OK = ParseContentRange(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseContentRange(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 4-7/16", "bytes */16", "bytes 0-0/1", "bytes 7-4/16", "bytes -1-2/3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, total, ok := ParseContentRange(s)
		if !ok {
			if first != 0 || last != 0 || total != 0 {
				t.Errorf("ParseContentRange(%q) = %d, %d, %d, false; want zeros", s, first, last, total)
			}
			return
		}
		if first < 0 || last < first || total <= last {
			t.Errorf("ParseContentRange(%q) = %d-%d/%d: not a range of the total", s, first, last, total)
		}
		again := fmt.Sprintf("bytes %d-%d/%d", first, last, total)
		if f2, l2, t2, ok2 := ParseContentRange(again); !ok2 || f2 != first || l2 != last || t2 != total {
			t.Errorf("ParseContentRange(%q) = %d-%d/%d, which parses back as %d-%d/%d %v", s, first, last, total, f2, l2, t2, ok2)
		}
	})
}

// errorsOf reports which of the sentinels a backend's callers act on err
// wraps.
func errorsOf(err error) []string {
	var got []string
	for _, s := range []struct {
		name string
		err  error
	}{
		{"unavailable", ErrUnavailable}, {"changed", ErrChanged}, {"timeout", ErrTimeout},
		{"canceled", context.Canceled}, {"unexpected EOF", io.ErrUnexpectedEOF},
	} {
		if errors.Is(err, s.err) {
			got = append(got, s.name)
		}
	}
	return got
}

func TestCheckContentRange(t *testing.T) {
	t.Parallel()
	const off, n, size = 4, 4, 16
	for _, tc := range []struct {
		name, header string
		want         []string // the sentinels wrapped, nil for no error
	}{
		{"the range asked", "bytes 4-7/16", nil},
		{"another range", "bytes 5-8/16", []string{"unavailable"}},
		{"a longer range", "bytes 4-8/16", []string{"unavailable"}},
		{"garbled", "bytes 4-7", []string{"unavailable"}},
		{"none", "", []string{"unavailable"}},
		{"another size", "bytes 4-7/17", []string{"unavailable", "changed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckContentRange(tc.header, off, n, size)
			if diff := cmp.Diff(tc.want, errorsOf(err)); diff != "" || (err == nil) != (tc.want == nil) {
				t.Errorf("CheckContentRange(%q) = %v (-want +got sentinels):\n%s", tc.header, err, diff)
			}
		})
	}
}

func TestCheckRangeRequest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		off, n, size int64
		ok           bool
	}{
		{0, 16, 16, true},
		{15, 1, 16, true},
		{0, 1, 0, false}, // an empty file has no range
		{-1, 2, 16, false},
		{0, 0, 16, false},
		{15, 2, 16, false},
	} {
		if err := CheckRangeRequest(tc.off, tc.n, tc.size); (err == nil) != tc.ok {
			t.Errorf("CheckRangeRequest(%d, %d, %d) = %v, want ok %v", tc.off, tc.n, tc.size, err, tc.ok)
		}
	}
	if got := RangeHeader(4, 4); got != "bytes=4-7" {
		t.Errorf("RangeHeader(4, 4) = %q, want bytes=4-7", got)
	}
}

func TestCheckContentLength(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		length int64
		ok     bool
	}{{4, true}, {-1, true}, {3, false}, {16, false}} {
		err := CheckContentLength(&http.Response{ContentLength: tc.length}, 4)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrUnavailable) {
			t.Errorf("Content-Length %d for 4 bytes: %v, want ok %v", tc.length, err, tc.ok)
		}
	}
}

// closeCounter is a body that counts its Close calls.
type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// timeoutError is a net.Error that timed out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestExactBody(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return &fs.PathError{Op: "read", Path: "a.mp3", Err: err} }
	for _, tc := range []struct {
		name string
		body io.Reader
		want string   // the bytes read
		errs []string // the sentinels of the error, nil for none
	}{
		{"exact", strings.NewReader("4567"), "4567", nil},
		{"longer: the rest is not read", strings.NewReader("456789"), "4567", nil},
		{"one byte a read", iotest.OneByteReader(strings.NewReader("4567")), "4567", nil},
		{"short", strings.NewReader("45"), "45", []string{"unavailable", "unexpected EOF"}},
		{"cut short", io.MultiReader(strings.NewReader("45"), iotest.ErrReader(io.ErrUnexpectedEOF)), "45",
			[]string{"unavailable", "unexpected EOF"}},
		{"empty", strings.NewReader(""), "", []string{"unavailable", "unexpected EOF"}},
		{"stalled", io.MultiReader(strings.NewReader("4"), iotest.ErrReader(timeoutError{})), "4", []string{"timeout"}},
		{"reset", iotest.ErrReader(errors.New("connection reset by peer")), "", []string{"unavailable"}},
		{"canceled", iotest.ErrReader(context.Canceled), "", []string{"canceled"}},
		{"data with EOF", iotest.DataErrReader(strings.NewReader("4567")), "4567", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := &closeCounter{Reader: tc.body}
			r := ExactBody(body, 4, wrap)
			got, err := io.ReadAll(r)
			if string(got) != tc.want {
				t.Errorf("read %q, want %q", got, tc.want)
			}
			if diff := cmp.Diff(tc.errs, errorsOf(err)); diff != "" || (err == nil) != (tc.errs == nil) {
				t.Errorf("ReadAll: %v (-want +got sentinels):\n%s", err, diff)
			}
			var pe *fs.PathError
			if err != nil && (!errors.As(err, &pe) || pe.Path != "a.mp3") {
				t.Errorf("ReadAll: %v, not passed through wrap", err)
			}
			if n, err := r.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Errorf("Read after the end = %d, %v; want 0 and an error", n, err)
			}
			if r.Close(); body.closed != 1 {
				t.Errorf("Close closed the body %d times, want once", body.closed)
			}
		})
	}
}

func TestClassifyTransport(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, refused := net.Dial("tcp", addr)
	if refused == nil {
		t.Fatalf("dial %s after its listener closed: no error", addr)
	}
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"refused", refused, []string{"unavailable"}},
		{"reset", errors.New("read: connection reset by peer"), []string{"unavailable"}},
		{"net timeout", &net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}}, []string{"timeout"}},
		{"deadline", fmt.Errorf("head: %w", context.DeadlineExceeded), []string{"timeout"}},
		{"canceled", &url.Error{Op: "Get", URL: "http://h/", Err: context.Canceled}, []string{"canceled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ClassifyTransport(tc.err)
			if diff := cmp.Diff(tc.want, errorsOf(err)); diff != "" {
				t.Errorf("ClassifyTransport(%v) = %v (-want +got sentinels):\n%s", tc.err, err, diff)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("ClassifyTransport(%v) = %v, which does not wrap it", tc.err, err)
			}
		})
	}
}

func TestNewHTTPClient(t *testing.T) {
	t.Parallel()
	policy := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.Run("own", func(t *testing.T) {
		t.Parallel()
		c := NewHTTPClient(nil, 3, policy)
		tr, ok := c.Transport.(*http.Transport)
		if !ok {
			t.Fatalf("Transport %T, want an *http.Transport of its own", c.Transport)
		}
		type settings struct {
			ResponseHeader, TLSHandshake time.Duration
			IdlePerHost                  int
			Redirect                     error
		}
		got := settings{tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout, tr.MaxIdleConnsPerHost, c.CheckRedirect(nil, nil)}
		want := settings{15 * time.Second, 10 * time.Second, 3, http.ErrUseLastResponse}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
			t.Errorf("client (-want +got):\n%s", diff)
		}
	})
	t.Run("given", func(t *testing.T) {
		t.Parallel()
		tr := &http.Transport{}
		given := &http.Client{Transport: tr, Timeout: time.Minute}
		c := NewHTTPClient(given, 3, policy)
		if c == given || given.CheckRedirect != nil {
			t.Error("the given client was changed, not copied")
		}
		if c.Transport != tr || c.Timeout != time.Minute || c.CheckRedirect == nil {
			t.Errorf("client %+v: want the given transport and timeout with the policy", c)
		}
	})
}

func TestNewRequest(t *testing.T) {
	t.Parallel()
	u := &url.URL{Scheme: "http", Host: "h", Path: "/a b#.mp3"}
	req, err := NewRequest(t.Context(), http.MethodGet, u, http.Header{"Range": {"bytes=0-3"}, "Accept-Encoding": {"gzip"}})
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{"Range": {"bytes=0-3"}, "Accept-Encoding": {"identity"}}
	if diff := cmp.Diff(want, req.Header); diff != "" || req.URL.String() != u.String() {
		t.Errorf("request of %s: %s, headers (-want +got):\n%s", u, req.URL, diff)
	}
	if _, err := NewRequest(t.Context(), "bad method", u, nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("NewRequest with a bad method: %v, want ErrUnavailable", err)
	}
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		errs []string
	}{
		{"0123", nil},
		{"01234", []string{"unavailable"}},
	} {
		got, err := ReadBody(&http.Response{Body: io.NopCloser(strings.NewReader(tc.body))}, 4)
		if diff := cmp.Diff(tc.errs, errorsOf(err)); diff != "" || err == nil && string(got) != tc.body {
			t.Errorf("ReadBody(%q, 4) = %q, %v (-want +got sentinels):\n%s", tc.body, got, err, diff)
		}
	}
	failing := &http.Response{Body: io.NopCloser(iotest.ErrReader(timeoutError{}))}
	if _, err := ReadBody(failing, 4); !errors.Is(err, ErrTimeout) {
		t.Errorf("ReadBody of a stalled body: %v, want ErrTimeout", err)
	}
}

func TestFileInfo(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 12, 30, 45, 0, time.UTC)
	type described struct {
		Name string
		Size int64
		Mode fs.FileMode
		Time time.Time
		Dir  bool
		Sys  any
	}
	describe := func(fi fs.FileInfo) described {
		return described{fi.Name(), fi.Size(), fi.Mode(), fi.ModTime(), fi.IsDir(), fi.Sys()}
	}
	for _, tc := range []struct {
		fi   FileInfo
		want described
	}{
		{FileInfo{Base: "a.mp3", Bytes: 7, MTime: at}, described{"a.mp3", 7, 0o444, at, false, nil}},
		{FileInfo{Base: "dir", Dir: true}, described{"dir", 0, fs.ModeDir | 0o555, time.Time{}, true, nil}},
	} {
		if diff := cmp.Diff(tc.want, describe(tc.fi)); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tc.fi, diff)
		}
	}
}
