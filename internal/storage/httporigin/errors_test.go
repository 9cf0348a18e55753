package httporigin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mustserv/internal/storage"
)

// The origins in this file are httptest servers that misbehave on
// purpose: they stand for a broken origin, not for a real component.

var (
	content = []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	modTime = time.Date(2025, 3, 1, 12, 30, 45, 0, time.UTC)
)

const etag = `"v1"`

// serveContent answers as a correct origin of content does.
func serveContent(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("ETag", etag)
	http.ServeContent(w, r, "a.mp3", modTime, bytes.NewReader(content))
}

// newOrigin starts h and returns a backend of its /media/ folder.
func newOrigin(t *testing.T, h http.HandlerFunc, opt Options) *Backend {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return newBackend(t, ts.URL+"/media/", opt)
}

// errorIs reports whether err wraps every one of want.
func errorIs(err error, want ...error) bool {
	for _, w := range want {
		if !errors.Is(err, w) {
			return false
		}
	}
	return err != nil
}

func TestStatErrors(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(serveContent))
	t.Cleanup(other.Close)
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + refused.Addr().String() + "/media/"
	refused.Close()

	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
	}
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want []error
	}{
		{"404", status(404), []error{fs.ErrNotExist}},
		{"410", status(410), []error{fs.ErrNotExist}},
		{"401", status(401), []error{storage.ErrUnavailable}}, // the library's credentials: a logged 502
		{"403", status(403), []error{fs.ErrPermission}},
		{"500", status(500), []error{storage.ErrUnavailable}},
		{"503", status(503), []error{storage.ErrUnavailable}},
		{"204", status(204), []error{storage.ErrUnavailable}},
		{"bad Last-Modified", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Last-Modified", "yesterday")
			w.Header().Set("Content-Length", "3")
		}, []error{storage.ErrUnavailable}},
		{"gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			serveContent(w, r)
		}, []error{storage.ErrUnavailable}},
		{"redirect to another host", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
		}, []error{storage.ErrUnavailable}},
		{"reset", func(w http.ResponseWriter, r *http.Request) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
		}, []error{storage.ErrUnavailable}},
		{"too slow", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // until the client gives up
		}, []error{storage.ErrTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Short only where it is what is tested: on a busy machine
			// a good answer can take longer than 100 ms.
			timeout := 10 * time.Second
			if tc.name == "too slow" {
				timeout = 100 * time.Millisecond
			}
			b := newOrigin(t, tc.h, Options{Timeout: timeout})
			fi, err := b.Stat(t.Context(), "a.mp3")
			if !errorIs(err, tc.want...) {
				t.Errorf("Stat = %v, %v; want an error wrapping %v", fi, err, tc.want)
			}
			if _, err := b.Open(t.Context(), "a.mp3"); !errorIs(err, tc.want...) {
				t.Errorf("Open: %v, want an error wrapping %v", err, tc.want)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		b := newBackend(t, refusedURL, Options{})
		if _, err := b.Stat(t.Context(), "a.mp3"); !errorIs(err, storage.ErrUnavailable) {
			t.Errorf("Stat: %v, want ErrUnavailable", err)
		}
	})
}

// A redirect within the origin is followed; one to name + "/" makes name a
// folder.
func TestStatRedirects(t *testing.T) {
	t.Parallel()
	b := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/media/moved.mp3":
			http.Redirect(w, r, "/store/a.mp3", http.StatusFound)
		case "/store/a.mp3":
			serveContent(w, r)
		case "/media/", "/media/dir/":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `[{"name":"dir","type":"directory","mtime":"Sat, 01 Mar 2025 12:30:45 GMT"}]`)
		case "/media/dir":
			http.Redirect(w, r, "/media/dir/", http.StatusMovedPermanently)
		default:
			http.NotFound(w, r)
		}
	}, Options{})
	fi, err := b.Stat(t.Context(), "moved.mp3")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(summary{Size: int64(len(content)), ModTime: modTime}, summarize(fi)); diff != "" {
		t.Errorf("Stat(moved.mp3) (-want +got):\n%s", diff)
	}
	fi, err = b.Stat(t.Context(), "dir")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(summary{Dir: true, ModTime: modTime}, summarize(fi)); diff != "" {
		t.Errorf("Stat(dir) (-want +got):\n%s", diff)
	}
}

// misbehaveOnGet serves HEADs correctly and answers GETs with h.
func misbehaveOnGet(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			serveContent(w, r)
			return
		}
		h(w, r)
	}
}

// askedRange returns the first and last byte of a "bytes=a-b" Range.
func askedRange(r *http.Request) (first, last int) {
	fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &first, &last)
	return first, last
}

// readRange fetches bytes [off, off+n) of name as an opened file's reads
// do (a HEAD, then the backend's fetch), but without the remote file's
// alignment of small reads to larger pieces: the origin sees exactly the
// range asked for.
func readRange(t *testing.T, b *Backend, name string, off, n int64) ([]byte, error) {
	t.Helper()
	v, err := b.head(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	f := &fetcher{b: b, name: name, url: b.fileURL(name), v: v}
	rc, err := f.fetch(t.Context(), off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// A fetch that gets anything but exactly the asked bytes of the opened
// version fails, and never returns other bytes.
func TestReadErrors(t *testing.T) {
	t.Parallel()
	partial := func(w http.ResponseWriter, r *http.Request, cr string, body []byte) {
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", modTime.Format(http.TimeFormat))
		w.Header().Set("Content-Range", cr)
		w.WriteHeader(http.StatusPartialContent)
		w.Write(body)
	}
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want []error
	}{
		{"good", serveContent, nil},
		{"wrong Content-Range", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			a, z := askedRange(r)
			partial(w, r, fmt.Sprintf("bytes %d-%d/%d", a-1, z-1, len(content)), content[a-1:z])
		}), []error{storage.ErrUnavailable}},
		{"no Content-Range", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			a, z := askedRange(r)
			partial(w, r, "", content[a:z+1])
		}), []error{storage.ErrUnavailable}},
		{"another size", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			a, z := askedRange(r)
			partial(w, r, fmt.Sprintf("bytes %d-%d/%d", a, z, len(content)+1), content[a:z+1])
		}), []error{storage.ErrChanged, storage.ErrUnavailable}},
		{"200 to a range", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", etag)
			w.Write(content)
		}), []error{storage.ErrUnavailable}},
		{"another ETag", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("If-Match")
			w.Header().Set("ETag", `"v2"`)
			http.ServeContent(w, r, "a.mp3", modTime, bytes.NewReader(content))
		}), []error{storage.ErrChanged, storage.ErrUnavailable}},
		{"another Last-Modified", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("If-Match")
			w.Header().Set("ETag", etag)
			http.ServeContent(w, r, "a.mp3", modTime.Add(time.Second), bytes.NewReader(content))
		}), []error{storage.ErrChanged, storage.ErrUnavailable}},
		{"412", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusPreconditionFailed)
		}), []error{storage.ErrChanged, storage.ErrUnavailable}},
		{"short body", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			a, z := askedRange(r)
			w.Header().Set("Content-Length", fmt.Sprint(z-a+1))
			partial(w, r, fmt.Sprintf("bytes %d-%d/%d", a, z, len(content)), content[a:z])
		}), []error{storage.ErrUnavailable, io.ErrUnexpectedEOF}},
		{"short chunked body", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			a, z := askedRange(r)
			partial(w, r, fmt.Sprintf("bytes %d-%d/%d", a, z, len(content)), nil)
			http.NewResponseController(w).Flush() // chunked: no Content-Length
			w.Write(content[a:z])
		}), []error{storage.ErrUnavailable, io.ErrUnexpectedEOF}},
		{"gone", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
		}), []error{fs.ErrNotExist}},
		{"500", misbehaveOnGet(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
		}), []error{storage.ErrUnavailable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newOrigin(t, tc.h, Options{})
			const off = 5
			got, err := readRange(t, b, "a.mp3", off, 10)
			n := len(got)
			if n > 10 || !bytes.Equal(got, content[off:off+n]) {
				t.Errorf("fetch read %q, not the file's bytes %q", got, content[off:off+min(n, 10)])
			}
			if tc.want == nil {
				if err != nil || n != 10 {
					t.Errorf("fetch = %d, %v; want 10 bytes", n, err)
				}
				return
			}
			if !errorIs(err, tc.want...) {
				t.Errorf("ReadAt = %d, %v; want an error wrapping %v", n, err, tc.want)
			}
			if errors.Is(err, storage.ErrChanged) != errors.Is(tc.want[0], storage.ErrChanged) {
				t.Errorf("ReadAt: %v: ErrChanged %v, want %v", err, !errors.Is(tc.want[0], storage.ErrChanged), errors.Is(tc.want[0], storage.ErrChanged))
			}
		})
	}
}

// The fetch sends the Range and the precondition of the opened version:
// If-Match for a strong ETag, else If-Unmodified-Since.
func TestFetchHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, etag string
		want       http.Header
	}{
		{"strong", `"v1"`, http.Header{"Range": {"bytes=5-14"}, "If-Match": {`"v1"`}, "Accept-Encoding": {"identity"}}},
		{"weak", `W/"v1"`, http.Header{"Range": {"bytes=5-14"}, "If-Unmodified-Since": {modTime.Format(http.TimeFormat)}, "Accept-Encoding": {"identity"}}},
		{"none", "", http.Header{"Range": {"bytes=5-14"}, "If-Unmodified-Since": {modTime.Format(http.TimeFormat)}, "Accept-Encoding": {"identity"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var got http.Header
			b := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					mu.Lock()
					got = http.Header{}
					for _, k := range []string{"Range", "If-Match", "If-Unmodified-Since", "Accept-Encoding"} {
						if v := r.Header.Values(k); v != nil {
							got[k] = v
						}
					}
					mu.Unlock()
				}
				if tc.etag != "" {
					w.Header().Set("ETag", tc.etag)
				}
				http.ServeContent(w, r, "a.mp3", modTime, bytes.NewReader(content))
			}, Options{})
			if _, err := readRange(t, b, "a.mp3", 5, 10); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("GET headers (-want +got):\n%s", diff)
			}
		})
	}
}

// An empty file is read without a single GET.
func TestEmptyFileNeverFetches(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	gets := 0
	b := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mu.Lock()
			gets++
			mu.Unlock()
		}
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "empty.mp3", modTime, bytes.NewReader(nil))
	}, Options{})
	f, err := b.Open(t.Context(), "empty.mp3")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil || len(data) != 0 {
		t.Errorf("ReadAll = %q, %v; want nothing", data, err)
	}
	if n, err := f.ReadAt(make([]byte, 4), 0); n != 0 || err != io.EOF {
		t.Errorf("ReadAt = %d, %v; want 0, io.EOF", n, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gets != 0 {
		t.Errorf("%d GETs for an empty file, want none", gets)
	}
}

// listing serves body as the listing of /media/ and content for the files
// below it, and records every path asked for.
type listing struct {
	ctype, body string
	head        map[string]int // status of a HEAD per path, if not 200
	mu          sync.Mutex
	paths       []string
}

func (l *listing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.paths = append(l.paths, r.URL.Path)
	l.mu.Unlock()
	switch {
	case l.head[r.URL.Path] != 0:
		w.WriteHeader(l.head[r.URL.Path])
	case r.URL.Path == "/media/" || r.URL.Path == "/media/dir/":
		w.Header().Set("Content-Type", l.ctype)
		io.WriteString(w, l.body)
	case strings.HasPrefix(r.URL.Path, "/media/"):
		serveContent(w, r)
	default:
		w.WriteHeader(http.StatusTeapot)
	}
}

func TestReadDir(t *testing.T) {
	t.Parallel()
	const jsonTime = "Sat, 01 Mar 2025 12:30:45 GMT"
	file := summary{Size: int64(len(content)), ModTime: modTime}
	for _, tc := range []struct {
		name  string
		l     *listing
		want  map[string]summary
		error []error
	}{
		{"json", &listing{ctype: "application/json", body: `[
			{"name":"ok.mp3","type":"file","mtime":"` + jsonTime + `","size":7},
			{"name":"dir","type":"directory","mtime":"` + jsonTime + `"},
			{"name":"link.mp3","type":"other","mtime":"` + jsonTime + `"},
			{"name":"../x.mp3","type":"file","mtime":"` + jsonTime + `","size":1},
			{"name":"a/b.mp3","type":"file","mtime":"` + jsonTime + `","size":1},
			{"name":"..","type":"directory","mtime":"` + jsonTime + `"},
			{"name":".","type":"directory","mtime":"` + jsonTime + `"},
			{"name":"","type":"file","mtime":"` + jsonTime + `","size":1},
			{"name":"ok.mp3","type":"file","mtime":"` + jsonTime + `","size":8}]`},
			map[string]summary{"ok.mp3": {Size: 7, ModTime: modTime}, "dir": {Dir: true, ModTime: modTime}}, nil},
		{"html", &listing{ctype: "text/html; charset=utf-8", body: `<html><body><h1>Index of /media/</h1>
			<a href="../">../</a> <a href="/">home</a> <a href="?C=N;O=D">Name</a>
			<a href="http://other.example/x.mp3">x</a> <a href="//other.example/y.mp3">y</a>
			<a href="..%2Fsecret.mp3">s</a> <a href="%2e%2e/">up</a> <a href="sub/z.mp3">z</a>
			<!-- <a href="commented.mp3">c</a> -->
			<A HREF='ok.mp3'>ok</A> <a class=x href=ok.mp3><img src=i.gif></a>
			<a href="a%20b%23c%3F.mp3">a b#c?.mp3</a> <a href="x&amp;y.mp3">x&amp;y</a>
			<a href="./c:d.mp3">c:d</a> <a href="e:f.mp3">scheme</a>
			<a href="gone.mp3">gone</a> <a href="secret.mp3">forbidden</a>
			<a href="dir/">dir/</a></body></html>`,
			head: map[string]int{"/media/gone.mp3": 404, "/media/secret.mp3": 403}},
			map[string]summary{"ok.mp3": file, "a b#c?.mp3": file, "x&y.mp3": file, "c:d.mp3": file, "dir": {Dir: true}}, nil},
		{"html HEAD fails", &listing{ctype: "text/html", body: `<a href="ok.mp3">ok</a><a href="bad.mp3">bad</a>`,
			head: map[string]int{"/media/bad.mp3": 500}}, nil, []error{storage.ErrUnavailable}},
		{"garbage json", &listing{ctype: "application/json", body: `[{"name":`}, nil, []error{storage.ErrUnavailable}},
		{"json null", &listing{ctype: "application/json", body: `null`}, nil, []error{storage.ErrUnavailable}},
		{"json object", &listing{ctype: "application/json", body: `{"name":"a.mp3"}`}, nil, []error{storage.ErrUnavailable}},
		{"json bad mtime", &listing{ctype: "application/json", body: `[{"name":"a.mp3","type":"file","mtime":"now","size":1}]`},
			nil, []error{storage.ErrUnavailable}},
		{"json no size", &listing{ctype: "application/json", body: `[{"name":"a.mp3","type":"file","mtime":"` + jsonTime + `"}]`},
			nil, []error{storage.ErrUnavailable}},
		{"plain text", &listing{ctype: "text/plain", body: "a.mp3\n"}, nil, []error{storage.ErrUnavailable}},
		{"forbidden", &listing{head: map[string]int{"/media/": 403}}, nil, []error{fs.ErrPermission}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newOrigin(t, tc.l.ServeHTTP, Options{})
			infos, err := b.ReadDir(t.Context(), ".")
			if tc.error != nil {
				if !errorIs(err, tc.error...) {
					t.Errorf("ReadDir = %v, %v; want an error wrapping %v", infos, err, tc.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := make(map[string]summary)
			for _, fi := range infos {
				got[fi.Name()] = summarize(fi)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReadDir (-want +got):\n%s", diff)
			}
			tc.l.mu.Lock()
			defer tc.l.mu.Unlock()
			for _, p := range tc.l.paths {
				if !strings.HasPrefix(p, "/media/") || strings.Contains(p, "secret") && p != "/media/secret.mp3" {
					t.Errorf("asked the origin for %q, outside the listed folder", p)
				}
			}
		})
	}
}
