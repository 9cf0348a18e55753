package haproxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"mustserv/internal/testenv"
	"mustserv/internal/testenv/haproxy"
)

// limit bounds every wait for a status change: the checks below run every
// 100 ms and two in a row change a status.
const limit = 10 * time.Second

// backend is a tiny HTTP server: /health answers health, anything else
// counts the request and answers the backend's name.
type backend struct {
	name   string
	health atomic.Int32 // the status /health answers
	served atomic.Int32
	srv    *httptest.Server
}

// newBackend starts a backend that is healthy, stopped when t ends.
func newBackend(t *testing.T, name string) *backend {
	b := &backend{name: name}
	b.health.Store(http.StatusOK)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(int(b.health.Load()))
			return
		}
		b.served.Add(1)
		io.WriteString(w, b.name)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// config balances a and b behind 127.0.0.1:port, checking /health every
// 100 ms; two checks in a row take a server DOWN or bring it back UP.
func config(port int, a, b *backend) string {
	return fmt.Sprintf(`global
    maxconn 256

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend web
    bind 127.0.0.1:%d
    default_backend media

backend media
    balance roundrobin
    option httpchk
    http-check send meth GET uri /health
    http-check expect status 200
    default-server inter 100ms fall 2 rise 2
    server a %s check
    server b %s check
`, port, a.srv.Listener.Addr(), b.srv.Listener.Addr())
}

// Round robin gives each of two servers half the requests, which Servers
// counts as each backend does; a server whose check answers 503 goes DOWN
// and gets nothing, and comes back UP once the check passes again.
func TestBalanceAndChecks(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := testenv.FreePort(t)
	p := haproxy.Start(t, config(port, a, b))
	p.WaitStatus(t, "media", "a", "UP", limit)
	p.WaitStatus(t, "media", "b", "UP", limit)
	front := fmt.Sprintf("http://127.0.0.1:%d/song.mp3", port)
	// A new connection for each request, so that nothing depends on how
	// haproxy shares server connections between client connections.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: limit}

	const n = 40
	got := map[string]int{}
	for range n {
		got[get(t, client, front)]++
	}
	if want := map[string]int{"a": n / 2, "b": n / 2}; !cmp.Equal(got, want) {
		t.Errorf("answers of %d requests: %v, want %v", n, got, want)
	}
	servers, err := p.Servers()
	if err != nil {
		t.Fatal(err)
	}
	// Until its first check, which may come after these requests, a
	// server is "UP 1/2": up, one failed check away from going down.
	for key, s := range servers {
		if !strings.HasPrefix(s.Status, "UP") {
			t.Errorf("%s is %q, want UP", key, s.Status)
		}
	}
	want := map[string]haproxy.Server{
		"media/a": {Backend: "media", Name: "a", Total: int(a.served.Load()), Weight: 1},
		"media/b": {Backend: "media", Name: "b", Total: int(b.served.Load()), Weight: 1},
	}
	if diff := cmp.Diff(want, servers, cmpopts.IgnoreFields(haproxy.Server{}, "Status", "LastChange", "BytesOut")); diff != "" {
		t.Errorf("Servers after %d requests (-want +got):\n%s", n, diff)
	}
	for key, s := range servers {
		// Each answer is a status line, headers and a one-letter body.
		if per := s.BytesOut / max(s.Total, 1); per < 40 || per > 400 {
			t.Errorf("%s sent %d bytes in %d answers", key, s.BytesOut, s.Total)
		}
	}

	a.health.Store(http.StatusServiceUnavailable)
	took := p.WaitStatus(t, "media", "a", "DOWN", limit)
	t.Logf("a went DOWN %v after its check started failing", took)
	// haproxy may write why after the status has changed.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(limit); !strings.Contains(p.Logs(), "Server media/a is DOWN"); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("haproxy's output does not say a went DOWN:\n%s", p.Logs())
		}
	}
	for range 4 {
		if got := get(t, client, front); got != "b" {
			t.Errorf("a request while a is DOWN was answered by %s, want b", got)
		}
	}

	a.health.Store(http.StatusOK)
	took = p.WaitStatus(t, "media", "a", "UP", limit)
	t.Logf("a came back UP %v after its check passed again", took)
	got = map[string]int{}
	for range 4 {
		got[get(t, client, front)]++
	}
	if want := map[string]int{"a": 2, "b": 2}; !cmp.Equal(got, want) {
		t.Errorf("answers of 4 requests once a is back: %v, want %v", got, want)
	}
}

// Runtime commands act on haproxy: a server disabled through the stats
// socket is in MAINT.
func TestRuntime(t *testing.T) {
	t.Parallel()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	p := haproxy.Start(t, config(testenv.FreePort(t), a, b))
	if out, err := p.Runtime("disable server media/b"); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("disable server: %q, %v", out, err)
	}
	p.WaitStatus(t, "media", "b", "MAINT", limit)
}

// A configuration haproxy refuses fails the test, with haproxy's own
// message, and leaves no haproxy running.
func TestStartRefused(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "haproxy")
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		haproxy.Start(ft, "frontend web\n    bind 127.0.0.1:1\n    no-such-keyword\n")
	}()
	<-done
	ft.cleanup()
	if !strings.Contains(ft.fatal, "no-such-keyword") || !strings.Contains(ft.fatal, "exited") {
		t.Errorf("Start of a bad configuration failed with %q, want haproxy's exit and its message", ft.fatal)
	}
}

// fakeT is a testing.TB whose Fatal stops the goroutine and records the
// message instead of failing the test, with cleanups run by cleanup.
type fakeT struct {
	testing.TB
	mu       sync.Mutex
	fatal    string
	cleanups []func()
}

// Helper does nothing: fakeT reports nothing with a line number.
func (f *fakeT) Helper() {}

// Fatal records args and stops the goroutine.
func (f *fakeT) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// Fatalf records the message and stops the goroutine.
func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

// Failed reports whether Fatal was called.
func (f *fakeT) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal != ""
}

// Logf keeps what the cleanup logs out of the real test's output.
func (f *fakeT) Logf(format string, args ...any) {}

// Cleanup keeps fn for cleanup.
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// cleanup runs the cleanups, last first.
func (f *fakeT) cleanup() {
	for _, fn := range slices.Backward(f.cleanups) {
		fn()
	}
}

// get GETs url and returns the body of its 200 answer.
func get(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %q, %v", url, resp.Status, body, err)
	}
	return string(body)
}
