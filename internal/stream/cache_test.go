package stream

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cachedHandler serves like fileHandler, but through a Cache: every
// request opens the file and serves the entry Put returns (a fresh read or
// the entry kept), as web's /stream handler does after a cache miss.
func cachedHandler(t testing.TB, dir string, s *Server, c *Cache) http.Handler {
	return fileHandler(t, dir, func(w http.ResponseWriter, r *http.Request, f *os.File, fi os.FileInfo) {
		e := c.Put(r.URL.Path, f, fi)
		if e == nil {
			t.Errorf("%s: not cached", r.URL.Path)
			http.Error(w, "not cached", http.StatusInternalServerError)
			return
		}
		s.ServeCached(w, r, e)
	})
}

// rawResponse is a response with every header but Date.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

func fetchRaw(t testing.TB, c *http.Client, method, url string, header map[string]string) rawResponse {
	t.Helper()
	resp := send(t, c, method, url, header)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	resp.Header.Del("Date")
	// A multipart boundary is random: compare the rest.
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/") {
		ct, _, _ = strings.Cut(ct, "boundary=")
		resp.Header.Set("Content-Type", ct+"boundary=B")
	}
	return rawResponse{resp.StatusCode, resp.Header, body}
}

// TestServeCachedMatchesServe runs TestServeRanges' whole table against a
// cached file and requires the very same response as Serve gives from the
// file: status, every header, every body byte (multipart boundaries
// aside, which are random).
func TestServeCachedMatchesServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clip := content(1, clipSize)
	files := map[string][]byte{
		"clip.mp3": clip, "movie.mkv": clip, "LOUD.MP3": clip,
		"page.unknownext": []byte(htmlPage), "page": []byte(htmlPage), "empty.mp3": nil,
	}
	etags := make(map[string]string)
	for name, data := range files {
		p := writeFile(t, dir, name, data, fixtureTime())
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		etags[name] = ETag(fi)
	}
	s := New(10 * time.Second)
	fromFile := httptest.NewServer(fileHandler(t, dir, s.Serve))
	t.Cleanup(fromFile.Close)
	cache := NewCache(CacheLimits{})
	fromCache := httptest.NewServer(cachedHandler(t, dir, s, cache))
	t.Cleanup(fromCache.Close)
	client := newClient(t)

	for _, tc := range rangeCases(files, etags) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := cmpOr(tc.file, "clip.mp3")
			method := cmpOr(tc.method, http.MethodGet)
			want := fetch(t, client, method, fromFile.URL+"/"+file, tc.header, files[file])
			got := fetch(t, client, method, fromCache.URL+"/"+file, tc.header, files[file])
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s %v: cached reply differs (-file +cache):\n%s", method, file, tc.header, diff)
			}
			if want.Parts != nil {
				return // the boundary differs; the parts were compared above
			}
			wantRaw := fetchRaw(t, client, method, fromFile.URL+"/"+file, tc.header)
			gotRaw := fetchRaw(t, client, method, fromCache.URL+"/"+file, tc.header)
			if diff := cmp.Diff(wantRaw, gotRaw); diff != "" {
				t.Errorf("%s %s %v: cached response differs (-file +cache):\n%s", method, file, tc.header, diff)
			}
		})
	}
}

// openFile opens dir/name and stats it, as the library does.
func openFile(t *testing.T, p string) (*os.File, os.FileInfo) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, fi
}

// clock is a settable time for a Cache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCacheTTLAndChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "cover.jpg", content(3, 1000), fixtureTime())
	clk := &clock{t: time.Unix(1_000_000, 0)}
	c := NewCache(CacheLimits{TTL: time.Second})
	c.now = clk.now

	if c.Get("lib/cover.jpg") != nil {
		t.Fatal("hit in an empty cache")
	}
	f, fi := openFile(t, p)
	e := c.Put("lib/cover.jpg", f, fi)
	if e == nil || !bytes.Equal(e.data, content(3, 1000)) {
		t.Fatal("Put did not return the file's bytes")
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != 0 {
		t.Errorf("Put moved the file's offset to %d", off)
	}
	clk.add(999 * time.Millisecond)
	if c.Get("lib/cover.jpg") != e {
		t.Error("no hit within the TTL")
	}
	if c.Get("lib/other.jpg") != nil {
		t.Error("hit for another key")
	}
	clk.add(time.Millisecond)
	if c.Get("lib/cover.jpg") != nil {
		t.Error("hit after the TTL: the file must be opened again")
	}

	// Opened again, unchanged: the same entry, trusted for another TTL.
	f, fi = openFile(t, p)
	if c.Put("lib/cover.jpg", f, fi) != e || c.Get("lib/cover.jpg") != e {
		t.Error("an unchanged file was not kept")
	}

	// Rewritten with the same size and modification time: the change
	// time (and here the inode) tells.
	tmp := filepath.Join(dir, "new")
	writeFile(t, dir, "new", content(4, 1000), fixtureTime())
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * time.Second)
	f, fi = openFile(t, p)
	e2 := c.Put("lib/cover.jpg", f, fi)
	if e2 == e || e2 == nil || !bytes.Equal(e2.data, content(4, 1000)) {
		t.Fatal("a replaced file was served from the old entry")
	}
	if n, size := c.Len(); n != 1 || size != 1000+int64(len("lib/cover.jpg"))+entryOverhead {
		t.Errorf("Len = %d entries, %d bytes; want 1, 1000 and the key and overhead", n, size)
	}
	c.Forget("lib/cover.jpg")
	if n, size := c.Len(); n != 0 || size != 0 || c.Get("lib/cover.jpg") != nil {
		t.Errorf("after Forget: %d entries, %d bytes", n, size)
	}
}

func TestCacheBounds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := NewCache(CacheLimits{MaxFile: 300, Capacity: 3000})
	// 20 files of 100..290 bytes: far more than the capacity.
	for i := range 20 {
		name := string(rune('a'+i)) + ".jpg"
		f, fi := openFile(t, writeFile(t, dir, name, content(byte(i), 100+10*i), fixtureTime()))
		e := c.Put(name, f, fi)
		if e == nil || len(e.data) != 100+10*i {
			t.Fatalf("%s: not served from the cache", name)
		}
		if n, size := c.Len(); size > 3000 || n == 0 {
			t.Fatalf("after %s: %d entries, %d bytes (capacity 3000)", name, n, size)
		}
	}
	// Too large for one entry: not cached, and an older entry for the
	// same key is gone.
	f, fi := openFile(t, writeFile(t, dir, "a.jpg", content(9, 301), fixtureTime()))
	if c.Put("a.jpg", f, fi) != nil {
		t.Error("a file above MaxFile was cached")
	}
	if c.Get("a.jpg") != nil {
		t.Error("a stale entry outlived a file grown past MaxFile")
	}

	// Many empty files: each entry still counts its key and bookkeeping,
	// so their number stays bounded by the capacity.
	tiny := NewCache(CacheLimits{Capacity: 10 * entryOverhead})
	for i := range 100 {
		name := fmt.Sprintf("empty%03d.jpg", i)
		f, fi := openFile(t, writeFile(t, dir, name, nil, fixtureTime()))
		if e := tiny.Put(name, f, fi); e == nil {
			t.Fatalf("%s: not served", name)
		}
	}
	if n, size := tiny.Len(); n > 10 || size > 10*entryOverhead {
		t.Errorf("100 empty files: %d entries counting %d bytes, capacity %d", n, size, 10*entryOverhead)
	}

	// A file that fits MaxFile but not the whole cache is served, not kept.
	small := NewCache(CacheLimits{MaxFile: 500, Capacity: 400})
	f, fi = openFile(t, writeFile(t, dir, "big.jpg", content(10, 450), fixtureTime()))
	if e := small.Put("big.jpg", f, fi); e == nil || len(e.data) != 450 {
		t.Error("a file larger than the capacity was not served")
	}
	if n, _ := small.Len(); n != 0 {
		t.Error("a file larger than the capacity was kept")
	}
}

// TestCacheShrunkFile: a file that is shorter than its stat said (cut
// between the open and the read) is not cached; it is served from the file.
func TestCacheShrunkFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "x.mp3", content(5, 2000), fixtureTime())
	f, fi := openFile(t, p)
	if err := os.Truncate(p, 1000); err != nil {
		t.Fatal(err)
	}
	c := NewCache(CacheLimits{})
	if c.Put("x.mp3", f, fi) != nil {
		t.Error("a file shorter than its stat was cached")
	}
}

// TestCacheConcurrent runs with -race: many requests for a few files
// while the cache evicts.
func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := NewCache(CacheLimits{MaxFile: 1000, Capacity: 2500})
	var paths []string
	for i := range 8 {
		paths = append(paths, writeFile(t, dir, string(rune('a'+i)), content(byte(i), 1000), fixtureTime()))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % len(paths)
				if e := c.Get(paths[k]); e != nil {
					if !bytes.Equal(e.data, content(byte(k), 1000)) {
						t.Errorf("wrong bytes for %s", paths[k])
					}
					continue
				}
				f, err := os.Open(paths[k])
				if err != nil {
					t.Error(err)
					return
				}
				fi, _ := f.Stat()
				if e := c.Put(paths[k], f, fi); e == nil || !bytes.Equal(e.data, content(byte(k), 1000)) {
					t.Errorf("Put %s: wrong entry", paths[k])
				}
				f.Close()
			}
		})
	}
	wg.Wait()
	if _, size := c.Len(); size > 2500 {
		t.Errorf("cache holds %d bytes, capacity 2500", size)
	}
}

// corkOf reads TCP_CORK of the server side of a connection.
func corkOf(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestCorkWhileSendingFile: with ConnContext, a file body sent to a fast
// client is corked (seen once the client, having read fast, holds the
// rest of the transfer back), and the socket is uncorked when the
// response is done, so the next response on the kept-alive connection is
// not held back. A small cached file is never corked; a slow client is
// not either (TestSlowClientOutlivesStall and cmd/mustserv's
// TestSlowReaderStreamOutlivesTimeouts cover that path).
func TestCorkWhileSendingFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := content(6, 48<<20)
	writeFile(t, dir, "big.mkv", big, fixtureTime())
	writeFile(t, dir, "small.jpg", content(7, 5000), fixtureTime())
	s := New(time.Minute)
	cache := NewCache(CacheLimits{})
	conns := make(chan net.Conn, 1)
	done := make(chan string, 4)
	srv := httptest.NewUnstartedServer(fileHandler(t, dir, func(w http.ResponseWriter, r *http.Request, f *os.File, fi fs.FileInfo) {
		if e := cache.Put(r.URL.Path, f, fi); e != nil {
			s.ServeCached(w, r, e)
		} else {
			s.Serve(w, r, f, fi)
		}
		done <- r.URL.Path
	}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		conns <- c
		return ConnContext(ctx, c)
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute)) // a bound on a hung server
	server := <-conns
	br := bufio.NewReader(c)
	get := func(name string) *http.Response {
		t.Helper()
		if _, err := io.WriteString(c, "GET /"+name+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	resp := get("big.mkv")
	// Read 16 MiB as fast as possible: the chunks grow to their largest,
	// which corks. The other 32 MiB cannot all fit in the socket buffers,
	// so the server is still sending when the client pauses.
	head := make([]byte, 16<<20)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	if got := corkOf(t, server); got != 1 {
		t.Errorf("TCP_CORK = %d while the body is sent to a fast client, want 1", got)
	}
	rest, err := io.ReadAll(resp.Body)
	if body := append(head, rest...); err != nil || !bytes.Equal(body, big) {
		t.Fatalf("body: %d bytes, %v", len(body), err)
	}
	<-done
	if got := corkOf(t, server); got != 0 {
		t.Errorf("TCP_CORK = %d after the response, want 0", got)
	}

	resp = get("small.jpg")
	if body, err := io.ReadAll(resp.Body); err != nil || !bytes.Equal(body, content(7, 5000)) {
		t.Fatalf("small body: %d bytes, %v", len(body), err)
	}
	<-done
	if got := corkOf(t, server); got != 0 {
		t.Errorf("TCP_CORK = %d after a cached response, want 0", got)
	}
}
