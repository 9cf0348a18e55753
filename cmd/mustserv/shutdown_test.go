package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// writeNoise writes size random bytes to dir/name and returns them.
func writeNoise(t testing.TB, dir, name string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(size >> 20)}).Read(b)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// compareWriter checks a body against the expected bytes as it arrives,
// without holding a second copy.
type compareWriter struct {
	want []byte
	off  int
	err  error
}

func (w *compareWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(p) > len(w.want)-w.off {
		w.err = fmt.Errorf("body longer than %d bytes", len(w.want))
		return 0, w.err
	}
	for i := range p {
		if p[i] != w.want[w.off+i] {
			w.err = fmt.Errorf("byte %d differs", w.off+i)
			return 0, w.err
		}
	}
	w.off += len(p)
	return len(p), nil
}

// done reports whether the whole expected body arrived, correct.
func (w *compareWriter) done() error {
	if w.err != nil {
		return w.err
	}
	if w.off != len(w.want) {
		return fmt.Errorf("got %d of %d bytes", w.off, len(w.want))
	}
	return nil
}

// dialRcvBuf dials addr with a small receive buffer, set before connect so
// that the TCP window stays small and the server's writes block early.
func dialRcvBuf(ctx context.Context, addr string, size int) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		})
		return errors.Join(err, serr)
	}}
	return d.DialContext(ctx, "tcp", addr)
}

func hostOf(t testing.TB, base string) string {
	t.Helper()
	host, ok := strings.CutPrefix(base, "http://")
	if !ok {
		t.Fatalf("URL %q is not http://", base)
	}
	return host
}

// rawGet sends a GET on conn and reads the response head.
func rawGet(conn net.Conn, br *bufio.Reader, path string) (*http.Response, error) {
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path); err != nil {
		return nil, err
	}
	return http.ReadResponse(br, nil)
}

func shutdownConfig(t testing.TB, grace, library string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`[server]
listen = "127.0.0.1:0"
data_dir = %s
shutdown_grace = %q

[auth]
mode = "none"

[[library]]
name = "Big"
path = %s
`, tomlString(t.TempDir()), grace, tomlString(library)))
}

// TestGracefulShutdown sends SIGTERM to the real binary while 20 streams are
// mid-body: /readyz stops saying 200, no new connection is served, every
// stream still completes with the right bytes, and the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "Big")
	const size = 16 << 20
	want := writeNoise(t, dir, "noise.mp4", size)
	p := startProc(t, bin, "serve", "--config", shutdownConfig(t, "20s", dir))
	host := hostOf(t, p.URL)
	ctx := playerCtx(t)

	// A keep-alive connection that has served one request.
	ka, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer ka.Close()
	kaBuf := bufio.NewReader(ka)
	resp, err := rawGet(ka, kaBuf, "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz before SIGTERM: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)

	// 20 streams, each read 16 KiB into the body, then held.
	const clients = 20
	var started sync.WaitGroup
	release := make(chan struct{})
	results := make(chan error, clients)
	for i := range clients {
		started.Add(1)
		go func() {
			var once sync.Once
			signal := func() { once.Do(started.Done) }
			defer signal()
			results <- func() error {
				conn, err := dialRcvBuf(ctx, host, 64<<10)
				if err != nil {
					return err
				}
				defer conn.Close()
				br := bufio.NewReader(conn)
				resp, err := rawGet(conn, br, "/stream/Big/noise.mp4")
				if err != nil {
					return err
				}
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("client %d: %s", i, resp.Status)
				}
				cw := &compareWriter{want: want}
				if _, err := io.CopyN(cw, resp.Body, 16<<10); err != nil {
					return fmt.Errorf("client %d: first 16 KiB: %v", i, err)
				}
				signal()
				<-release
				if _, err := io.Copy(cw, resp.Body); err != nil {
					return fmt.Errorf("client %d after %d bytes: %v", i, cw.off, err)
				}
				return cw.done()
			}()
		}()
	}
	started.Wait()

	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.Stderr.waitFor(t, 20*time.Second, "shutting down line", func(s string) bool {
		return strings.Contains(s, `msg="shutting down"`)
	})

	// The idle keep-alive connection either gets 503 (if its request lands
	// between /readyz turning 503 and Shutdown) or is closed: net/http's
	// Shutdown closes idle connections and drops any request whose header
	// completes after it began. Either way it is never told "ready" again.
	resp, err = rawGet(ka, kaBuf, "/readyz")
	switch {
	case err != nil:
		t.Logf("keep-alive connection closed by the drain: %v", err)
	case resp.StatusCode == http.StatusServiceUnavailable:
		t.Logf("keep-alive connection: /readyz %s", resp.Status)
	default:
		t.Errorf("/readyz on the keep-alive connection after SIGTERM: %s, want 503 or a closed connection", resp.Status)
	}

	// New connections are refused once the listener is closed; any that
	// still got through must not hear "ready".
	refused := false
	for range 250 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial after SIGTERM: %v, want connection refused", err)
			}
			refused = true
			break
		}
		resp, err := rawGet(c, bufio.NewReader(c), "/readyz")
		if err == nil && resp.StatusCode == http.StatusOK {
			t.Errorf("new connection after SIGTERM: /readyz 200")
		}
		c.Close()
		time.Sleep(20 * time.Millisecond) // polling interval of a bounded loop
	}
	if !refused {
		t.Errorf("new connections are still accepted after SIGTERM")
	}

	select {
	case <-p.done:
		t.Fatalf("process exited while %d streams were running: %v\n%s", clients, p.err, p.Stderr)
	default:
	}

	close(release)
	for range clients {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Errorf("exit: %v, want status 0", err)
	}

	// Every stream's access line was written after the drain began, so
	// all 20 were mid-body at SIGTERM; none was cut.
	log := p.Stderr.String()
	drainAt := strings.Index(log, `msg="shutting down"`)
	streams := 0
	for _, l := range parseAccessLog(log[drainAt:]) {
		if l.Path == "/stream/Big/noise.mp4" && l.Status == http.StatusOK && l.Bytes == size {
			streams++
		}
	}
	if streams != clients {
		t.Errorf("%d complete streams logged after the drain began, want %d; log:\n%s", streams, clients, tail(log, 8000))
	}
	if strings.Contains(log, "grace period over") {
		t.Errorf("streams were cut:\n%s", tail(log, 4000))
	}
}

// TestShutdownGraceCutsStalledStream: a client that stops reading cannot
// hold the process past shutdown_grace; it still exits 0.
func TestShutdownGraceCutsStalledStream(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "Big")
	const size = 16 << 20
	want := writeNoise(t, dir, "noise.mp4", size)
	p := startProc(t, bin, "serve", "--config", shutdownConfig(t, "1s", dir))

	conn, err := dialRcvBuf(playerCtx(t), hostOf(t, p.URL), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	resp, err := rawGet(conn, br, "/stream/Big/noise.mp4")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v %v", resp, err)
	}
	cw := &compareWriter{want: want}
	if _, err := io.CopyN(cw, resp.Body, 16<<10); err != nil {
		t.Fatal(err)
	}
	// From here on the client reads nothing until the process is gone.

	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Errorf("exit: %v, want status 0", err)
	}
	if log := p.Stderr.String(); !strings.Contains(log, "grace period over") {
		t.Errorf("no 'grace period over' in the log:\n%s", tail(log, 4000))
	}
	// The server cut the stream: what is left in the socket buffers
	// arrives, then the body ends early.
	_, err = io.Copy(cw, resp.Body)
	if err == nil && cw.done() == nil {
		t.Errorf("the stalled client received the whole body: the stream was not cut")
	}
	if cw.err != nil {
		t.Errorf("bytes received before the cut are wrong: %v", cw.err)
	}
}

// TestSecondSignalExits: during a drain that would last an hour, a second
// SIGTERM ends the process at once (by the signal's default action), so an
// operator pressing Ctrl-C twice is not kept waiting.
func TestSecondSignalExits(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "Big")
	writeNoise(t, dir, "noise.mp4", 16<<20)
	p := startProc(t, bin, "serve", "--config", shutdownConfig(t, "1h", dir))

	conn, err := dialRcvBuf(playerCtx(t), hostOf(t, p.URL), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := rawGet(conn, bufio.NewReader(conn), "/stream/Big/noise.mp4")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v %v", resp, err)
	}
	// The client reads no more: the drain cannot finish on its own.

	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.Stderr.waitFor(t, 20*time.Second, "shutting down line", func(s string) bool {
		return strings.Contains(s, `msg="shutting down"`)
	})
	select {
	case <-p.done:
		t.Fatalf("process exited during a 1h drain with a stream open: %v", p.err)
	default:
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = p.wait(t, 30*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("after the second SIGTERM: %v, want death by SIGTERM", err)
	}
}

// TestHeaderTimeout: a client that sends its request header one byte per
// second is disconnected by read_header_timeout before the header is done.
func TestHeaderTimeout(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, "[server]\nread_header_timeout = \"2s\"\n")
	s := startServer(t, "--config", cfg, filepath.Join(mediaDir, "Videos"))

	conn, err := net.Dial("tcp", hostOf(t, s.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan []byte, 1) // what the server sent before closing
	go func() {
		b, _ := io.ReadAll(conn) // EOF or reset when the server closes
		closed <- b
	}()

	header := "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n\r\n"
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sent := 0
	var got []byte
loop:
	for sent < len(header) {
		select {
		case got = <-closed:
			break loop
		case <-tick.C:
			if _, err := conn.Write([]byte{header[sent]}); err != nil {
				got = <-closed
				break loop
			}
			sent++
		}
	}
	if sent == len(header) {
		t.Fatalf("the whole header (%d bytes, one per second) was sent without the server closing the connection", sent)
	}
	// net/http closes silently, or with a 400 when the deadline strikes
	// inside the request line; it never serves the request.
	if len(got) != 0 && !strings.HasPrefix(string(got), "HTTP/1.1 400 ") && !strings.HasPrefix(string(got), "HTTP/1.1 408 ") {
		t.Errorf("server answered %q to an incomplete header", got)
	}
	t.Logf("cut after %d of %d header bytes", sent, len(header))
}

// TestSlowReaderStreamOutlivesTimeouts: with every timeout at 1-2 s, a
// client reading a stream at about 2 KB/s keeps receiving for 7 s (more than
// three times the largest) and gets every byte right: there is no overall
// write timeout, and write_stall only cuts a client that stops.
func TestSlowReaderStreamOutlivesTimeouts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Big")
	const size = 8 << 20 // more than the kernel buffers the server can fill
	want := writeNoise(t, dir, "noise.mp4", size)
	cfg := writeConfig(t, "[server]\nread_header_timeout = \"1s\"\nidle_timeout = \"1s\"\nwrite_stall = \"2s\"\n")
	s := startServer(t, "--config", cfg, dir)

	conn, err := dialRcvBuf(playerCtx(t), hostOf(t, s.URL), 4<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 512)
	resp, err := rawGet(conn, br, "/stream/Big/noise.mp4")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %v %v", resp, err)
	}

	// 200 bytes every 100 ms for 7 s.
	cw := &compareWriter{want: want}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 200)
	for i := range 70 {
		<-tick.C
		n, err := io.ReadFull(resp.Body, buf)
		cw.Write(buf[:n])
		if err != nil {
			t.Fatalf("slow read %d (after %.1fs, %d bytes): %v; log:\n%s", i, float64(i)/10, cw.off, err, tail(s.Stderr.String(), 4000))
		}
	}
	if _, err := io.Copy(cw, resp.Body); err != nil {
		t.Errorf("rest of the body after %d bytes: %v", cw.off, err)
	}
	if err := cw.done(); err != nil {
		t.Errorf("body: %v; log:\n%s", err, tail(s.Stderr.String(), 4000))
	}
}
