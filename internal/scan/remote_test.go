package scan

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mustserv/internal/config"
	"mustserv/internal/storage"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		16 * time.Minute, 30 * time.Minute, 30 * time.Minute}
	for n, w := range want {
		if got := backoff(n); got != w {
			t.Errorf("backoff(%d) = %v, want %v", n, got, w)
		}
	}
	if got := backoff(1000); got != retryMax {
		t.Errorf("backoff(1000) = %v, want %v", got, retryMax)
	}
}

// TestRemoteLibraryOffline: a library on an HTTP server that stops
// answering is offline with its items kept, is due for a retry after
// 30 s and then after twice as long, and is back (retry cleared) when the
// server answers again.
func TestRemoteLibraryOffline(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	put(t, root, "x/1.mp3", mp3File)
	put(t, root, "x/2.flac", flacFile)
	var down atomic.Bool
	files := http.FileServer(http.Dir(root))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	e := newEnvLibs(t, Options{}, config.Library{Name: "Music", URL: ts.URL + "/"})
	if p := e.run(t); p.Probed != 2 || len(p.Errors) != 0 {
		t.Fatalf("first scan: %+v, want 2 probed", p)
	}
	if _, ok := e.s.retry.next(); ok {
		t.Fatal("a retry is due for a library that answered")
	}

	down.Store(true)
	var last time.Time
	for i, wait := range []time.Duration{retryFirst, 2 * retryFirst} {
		before := time.Now()
		p := e.run(t)
		if n := e.count(t); n != 2 || p.Removed != 0 {
			t.Errorf("scan %d while down: %d items (removed %d), want 2 kept", i, n, p.Removed)
		}
		if len(p.Errors) == 0 || !strings.Contains(p.Errors[0], "offline") || !strings.Contains(p.Errors[0], "cannot be reached") {
			t.Errorf("scan %d while down: errors %q, want the library reported offline, unreachable", i, p.Errors)
		}
		at, ok := e.s.retry.next()
		names := e.s.retry.take(at) // as Serve does when the time comes
		if !ok || !names["Music"] || at.Before(before.Add(wait)) || at.After(time.Now().Add(wait)) {
			t.Errorf("scan %d while down: retry %v at %v (in %v), want Music in %v", i, names, at, time.Until(at), wait)
		}
		last = at
	}
	libs, err := e.idx.Libraries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) != 1 || libs[0].Online {
		t.Errorf("libraries while down: %+v, want Music offline", libs)
	}

	down.Store(false)
	if p := e.run(t); p.Unchanged != 2 || len(p.Errors) != 0 {
		t.Errorf("scan after the server is back: %+v, want 2 unchanged", p)
	}
	if at, ok := e.s.retry.next(); ok {
		t.Errorf("retry still due after the server is back: at %v (was %v)", at, last)
	}
}

// TestRetryTaken: a due retry is taken off the list when its scan starts,
// so a scan that ends before noting the library again (a library edited
// from a URL into a folder, an index error) cannot leave it due in the
// past, which made Serve rescan it without pause.
func TestRetryTaken(t *testing.T) {
	t.Parallel()
	var r retries
	now := time.Now()
	r.note("A", errUnreachableForTest, now.Add(-time.Hour))
	r.note("B", errUnreachableForTest, now)
	if got := r.take(now); !got["A"] || got["B"] {
		t.Errorf("take = %v, want A only (B is due later)", got)
	}
	if got := r.take(now); len(got) != 0 {
		t.Errorf("second take = %v, want nothing", got)
	}
	if at, ok := r.next(); !ok || !at.After(now) || !r.take(at)["B"] {
		t.Errorf("next = %v %v, want B in the future", at, ok)
	}
	r.note("B", errUnreachableForTest, now)
	r.note("B", nil, now)
	if _, ok := r.next(); ok {
		t.Error("a library that answered is still due")
	}
}

var errUnreachableForTest = fmt.Errorf("%w: refused", storage.ErrUnavailable)
