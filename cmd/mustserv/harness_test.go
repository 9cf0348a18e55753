package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// mediaDir is the repository's folder of real media fixtures.
const mediaDir = "../../testdata/media"

// logBuffer is an io.Writer that many goroutines may write to (the server
// logs from every connection) while a test reads it. Waiters are woken on
// every write, so a test waits for a log line instead of sleeping.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return n, err
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// snapshot returns the text so far and a channel closed on the next write.
func (b *logBuffer) snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String(), b.changed
}

// waitFor waits until ok accepts the text written so far, and fails the test
// after limit (a bound on a hung server, not a synchronisation device).
func (b *logBuffer) waitFor(t testing.TB, limit time.Duration, what string, ok func(text string) bool) string {
	t.Helper()
	timeout := time.After(limit)
	for {
		text, changed := b.snapshot()
		if ok(text) {
			return text
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no %s after %v; log:\n%s", what, limit, text)
		}
	}
}

// waitRequests waits until the access log holds a request line accepted by
// match, and returns all such lines. The access log line is written when the
// handler returns, which may be after the client saw the last byte.
func (b *logBuffer) waitRequests(t testing.TB, what string, match func(accessLine) bool) []accessLine {
	t.Helper()
	var found []accessLine
	b.waitFor(t, 20*time.Second, what, func(text string) bool {
		found = found[:0]
		for _, l := range parseAccessLog(text) {
			if match(l) {
				found = append(found, l)
			}
		}
		return len(found) > 0
	})
	return found
}

// accessLine is one "msg=request" line of the server's log.
type accessLine struct {
	Method, Path, Range string
	Client              string // as the server saw it, after trusted proxies
	Status              int
	Bytes               int64
}

// parseAccessLog extracts the access log lines from slog's text output.
func parseAccessLog(text string) []accessLine {
	var out []accessLine
	for line := range strings.Lines(text) {
		kv := parseLogfmt(strings.TrimSpace(line))
		if kv["msg"] != "request" {
			continue
		}
		status, _ := strconv.Atoi(kv["status"])
		n, _ := strconv.ParseInt(kv["bytes"], 10, 64)
		out = append(out, accessLine{Method: kv["method"], Path: kv["path"], Range: kv["range"], Client: kv["client"], Status: status, Bytes: n})
	}
	return out
}

// parseLogfmt splits one slog text line into its keys and values; quoted
// values are Go-quoted strings.
func parseLogfmt(line string) map[string]string {
	kv := map[string]string{}
	for line != "" {
		key, rest, ok := strings.Cut(line, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				break
			}
			val, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else {
			val, rest, _ = strings.Cut(rest, " ")
		}
		kv[key] = val
		line = strings.TrimLeft(rest, " ")
	}
	return kv
}

var openRange = regexp.MustCompile(`^bytes=(\d+)-$`)

// rangeStart returns N of an open-ended "bytes=N-" header, or -1.
func rangeStart(h string) int64 {
	m := openRange.FindStringSubmatch(h)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// servingLine is what serve prints on stdout once it listens.
var servingLine = regexp.MustCompile(`(?m)^mustserv: serving (\d+) librar(?:y|ies) at (https?://\S+)/\n`)

// urlWriter collects stdout and reports the server's URL once the serving
// line is complete.
type urlWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	url  chan string // receives the URL once
	sent bool
}

func newURLWriter() *urlWriter { return &urlWriter{url: make(chan string, 1)} }

func (w *urlWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if m := servingLine.FindSubmatch(w.buf.Bytes()); m != nil && !w.sent {
		w.sent = true
		w.url <- string(m[2])
	}
	return len(p), nil
}

func (w *urlWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// server is a running MuStServ, in-process or as a child process.
type server struct {
	URL    string
	Stdout *urlWriter
	Stderr *logBuffer
	stop   func() error // in-process only: cancel run and return its error
}

// Stop stops an in-process server and waits for run to return: every
// handler has then returned and written its access log line. The cleanup
// of startRun checks the error.
func (s *server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Errorf("run returned %v after cancel, want nil", err)
	}
}

// requests returns the access log lines written so far.
func (s *server) requests() []accessLine { return parseAccessLog(s.Stderr.String()) }

// startRun runs `mustserv serve --data <tmp> args...` in-process with env as
// its whole environment, waits until it serves and /readyz says 200, and on
// cleanup cancels it and checks that run returned nil.
func startRun(t testing.TB, env map[string]string, args ...string) *server {
	t.Helper()
	s := &server{Stdout: newURLWriter(), Stderr: newLogBuffer()}
	noteLog(s.Stderr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var argv []string
	if !slices.Contains(args, "--auth") {
		// Most tests are about streaming, not accounts: those that are
		// pass "--auth" (which this removes) to keep accounts on.
		argv = append([]string{"serve", "--data", t.TempDir(), "--no-auth"}, args...)
	} else {
		argv = append([]string{"serve", "--data", t.TempDir()}, slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--auth" })...)
	}
	getenv := func(k string) string { return env[k] }
	go func() { done <- run(ctx, argv, getenv, s.Stdout, s.Stderr) }()

	select {
	case s.URL = <-s.Stdout.url:
	case err := <-done:
		cancel()
		t.Fatalf("run returned before serving: %v\nstderr:\n%s", err, s.Stderr)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("no serving line after 20s; stdout:\n%s\nstderr:\n%s", s.Stdout, s.Stderr)
	}
	s.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(60 * time.Second):
			return errors.New("run did not return within 60s of cancel")
		}
	})
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("run returned %v after cancel, want nil", err)
		}
	})
	waitReady(t, s.URL)
	return s
}

// startServer serves dirs (and any flags before them) on a free loopback port.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	return startRun(t, nil, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
}

// waitReady polls /readyz until it answers 200, a bounded number of times.
func waitReady(t testing.TB, base string) {
	t.Helper()
	var last string
	client := http.DefaultClient
	if strings.HasPrefix(base, "https:") {
		// Readiness only: the tests that serve HTTPS check the certificate.
		client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	}
	for range 200 {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(10 * time.Millisecond) // a polling interval, bounded by the loop
	}
	t.Fatalf("%s/readyz never answered 200; last: %s", base, last)
}

// noRedirect is a client that returns redirects instead of following
// them (a login's 303 carries the cookie).
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// writeConfig writes a TOML configuration into a temporary folder.
func writeConfig(t testing.TB, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mustserv.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string { return strconv.Quote(s) }

// get fetches url and returns the response with its whole body read.
func get(t testing.TB, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	return do(t, http.MethodGet, url, header...)
}

func do(t testing.TB, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, body
}

// readFile reads a file of the test's own, failing the test on error.
func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// playerCtx bounds one run of an external program.
func playerCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// runTool runs an external program with a hard timeout and fails the test,
// with its output, when it exits non-zero or is killed.
func runTool(t testing.TB, cmd *exec.Cmd) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(cmd.Args, " "), err, out, tail(stderr.String(), 4000))
	}
	return out
}

// tail keeps the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// binary builds mustserv once per test binary and returns its path.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mustserv-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	out := filepath.Join(dir, "mustserv")
	// The test runs in cmd/mustserv; GOTOOLCHAIN and the rest of the
	// environment are inherited from `go test`.
	cmd := exec.Command("go", "build", "-o", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, b)
	}
	return out, nil
})

// binDir is removed by TestMain once every test is done.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaks, logs, secrets := suiteLeaks(); len(leaks) > 0 {
			fmt.Fprintln(os.Stderr, "FAIL: secrets in the servers' logs (issue 6, acceptance 3):")
			for _, l := range leaks {
				fmt.Fprintln(os.Stderr, "  ", l)
			}
			code = 1
		} else {
			fmt.Fprintf(os.Stderr, "secrets: %d passwords, sessions, keys and link signatures looked for in %d server logs: none found\n",
				secrets, logs)
		}
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// suite is every server log of the test run and every secret a test
// used (passwords, sessions, API keys, link tokens and their
// signatures): TestMain looks for each secret in each log after all tests
// (acceptance point 3 of issue 6). The setup token is logged on purpose
// and is not noted.
var suite struct {
	sync.Mutex
	logs    []*logBuffer
	secrets map[string]bool
}

// noteSecret records secrets to look for in the logs.
func noteSecret(secrets ...string) {
	suite.Lock()
	defer suite.Unlock()
	if suite.secrets == nil {
		suite.secrets = map[string]bool{}
	}
	for _, s := range secrets {
		if len(s) >= 8 { // shorter ones match by chance
			suite.secrets[s] = true
		}
		// A token's signature alone is enough to worry about.
		if strings.HasPrefix(s, "v1.") {
			if i := strings.LastIndexByte(s, '.'); len(s)-i > 8 {
				suite.secrets[s[i+1:]] = true
			}
		}
	}
}

// suiteLeaks returns each secret found in a log, and how many logs and
// secrets were looked at.
func suiteLeaks() (leaks []string, logs, secrets int) {
	suite.Lock()
	defer suite.Unlock()
	for _, b := range suite.logs {
		text := b.String()
		for s := range suite.secrets {
			if strings.Contains(text, s) {
				leaks = append(leaks, fmt.Sprintf("%.12s… in a log", s))
			}
		}
	}
	return leaks, len(suite.logs), len(suite.secrets)
}

func noteLog(b *logBuffer) {
	suite.Lock()
	defer suite.Unlock()
	suite.logs = append(suite.logs, b)
}

// buildBinary returns the path of the built mustserv.
func buildBinary(t testing.TB) string {
	t.Helper()
	testenv.NeedTool(t, "go")
	p, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is mustserv running as a child process.
type proc struct {
	server
	Cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's result, valid after done is closed
}

// startProc starts argv (the built binary, or a wrapper such as strace
// around it) and waits until it serves. On cleanup a process still running
// is killed.
func startProc(t testing.TB, argv ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(argv[0], argv[1:]...))
}

// startCmd starts cmd (mustserv serve, however it is run: in a network
// namespace, say) like startProc.
func startCmd(t testing.TB, cmd *exec.Cmd) *proc {
	t.Helper()
	argv := cmd.Args
	p := &proc{server: server{Stdout: newURLWriter(), Stderr: newLogBuffer()}, done: make(chan struct{})}
	noteLog(p.Stderr)
	p.Cmd = cmd
	p.Cmd.Stdout = p.Stdout
	p.Cmd.Stderr = p.Stderr
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.Cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.URL = <-p.Stdout.url:
	case <-p.done:
		t.Fatalf("%s exited before serving: %v\nstderr:\n%s", argv[0], p.err, p.Stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("no serving line after 30s; stderr:\n%s", p.Stderr)
	}
	waitReady(t, p.URL)
	return p
}

// wait waits for the process to exit, at most limit, and returns cmd.Wait's
// error.
func (p *proc) wait(t testing.TB, limit time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(limit):
		p.Cmd.Process.Kill()
		<-p.done
		t.Fatalf("process still running %v after it was told to stop; stderr:\n%s", limit, tail(p.Stderr.String(), 4000))
		return errors.New("unreachable")
	}
}
