// Package haproxy runs a real HAProxy for a test (Start) with the test's
// configuration, and reads its view of the servers it balances (Servers,
// WaitStatus) from its Runtime API on a stats socket that Start adds.
//
// It writes no configuration beyond that socket: the test brings its own
// (typically what `mustserv haproxy-config` writes). It does not reload
// HAProxy or run it in master-worker mode, and it is imported by tests
// only. Without haproxy the test is skipped (failed in CI).
package haproxy

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// Limits of the waits of Start and Stop.
const (
	startLimit = 10 * time.Second // until the stats socket answers
	stopLimit  = 5 * time.Second  // after SIGTERM, before SIGKILL
	poll       = 10 * time.Millisecond
)

// Proxy is a running haproxy started by a test, stopped (and its files
// removed) when the test ends.
type Proxy struct {
	Config string // the configuration file haproxy runs: the test's text and the added global section
	Socket string // the stats socket (Runtime API, level admin)

	cmd    *exec.Cmd
	exited chan struct{} // closed once haproxy has exited
	logs   *logBuffer
	stop   sync.Once
}

// Server is the state of one server of a backend, from a row of `show
// stat`.
type Server struct {
	Backend, Name string
	// Status is "UP", "DOWN", "MAINT", "DRAIN", "no check", or on the way
	// between UP and DOWN "UP 1/2" (still UP, failed 1 of the 2 checks
	// that take it down) or "DOWN 1/2" (still DOWN, passed 1 of the 2
	// checks that bring it up). A checked server starts as "UP 1/2"
	// (HAProxy 2.6): up, and "UP" once its first check has passed.
	Status string
	// Current is the number of sessions (requests) it serves now, Total
	// the number it was given since haproxy started (scur, stot).
	Current, Total int
	// Weight is its effective weight.
	Weight int
	// BytesOut is what it sent the clients through haproxy (bout).
	BytesOut int
	// LastChange is how long ago its status last changed (lastchg,
	// whole seconds), or 0 when haproxy does not say.
	LastChange time.Duration
}

// Start runs `haproxy -db -f FILE` where FILE holds the configuration cfg,
// as the caller wrote it, and then a second global section (which HAProxy
// merges into the first) with a stats socket at level admin in a
// temporary folder. Coming after cfg, it keeps the line numbers of
// haproxy's messages those of cfg. Start returns once the socket answers,
// and fails t with haproxy's output if haproxy exits first or does not
// answer within 10 seconds. The proxy is stopped when t ends, and its
// output logged if t failed.
func Start(t testing.TB, cfg string) *Proxy {
	t.Helper()
	bin := "/usr/sbin/haproxy" // not on a non-root user's PATH on Debian
	if _, err := os.Stat(bin); err != nil {
		bin = testenv.NeedTool(t, "haproxy")
	}
	dir := socketDir(t)
	p := &Proxy{
		Config: filepath.Join(dir, "haproxy.cfg"),
		Socket: filepath.Join(dir, "stats.sock"),
		exited: make(chan struct{}),
		logs:   new(logBuffer),
	}
	text := strings.TrimRight(cfg, "\n") + "\n\n# added by testenv/haproxy.Start\nglobal\n" +
		"    stats socket " + p.Socket + " mode 600 level admin\n"
	if err := os.WriteFile(p.Config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "-db", "-f", p.Config)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("haproxy: %v", err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", p.Logs())
		}
	})

	deadline := time.Now().Add(startLimit)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		_, err := p.Runtime("show info")
		if err == nil {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("haproxy exited (%v) before its stats socket answered:\n%s", p.cmd.ProcessState, p.Logs())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			p.Stop()
			t.Fatalf("haproxy's stats socket did not answer within %v: %v\n%s", startLimit, err, p.Logs())
		}
	}
}

// Stop stops haproxy: SIGTERM (its immediate stop), then SIGKILL if it
// has not exited 5 seconds later. It returns once haproxy has exited; later
// calls do nothing. The test's cleanup calls it.
func (p *Proxy) Stop() {
	p.stop.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(stopLimit):
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// Logs returns what haproxy has written so far (to stderr and stdout; its
// alerts and warnings, such as a server going DOWN and why).
func (p *Proxy) Logs() string { return p.logs.String() }

// Runtime sends one command of HAProxy's Runtime API (such as "show
// stat", "disable server b/s" or "set weight b/s 0") to the stats socket
// and returns the answer.
func (p *Proxy) Runtime(command string) (string, error) {
	c, err := net.DialTimeout("unix", p.Socket, time.Second)
	if err != nil {
		return "", fmt.Errorf("haproxy %q: %w", command, err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	// Without "prompt", haproxy answers one command and closes.
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		return "", fmt.Errorf("haproxy %q: %w", command, err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("haproxy %q: %w", command, err)
	}
	return string(out), nil
}

// Servers returns the state of every server of every backend, by
// "backend/server", from `show stat`.
func (p *Proxy) Servers() (map[string]Server, error) {
	out, err := p.Runtime("show stat")
	if err != nil {
		return nil, err
	}
	return parseStat(out)
}

// WaitStatus polls Servers until the server of backend has a status that
// starts with want ("UP" is also "UP 1/2", which is still up and gets
// requests; coming back from DOWN, a server goes straight to "UP"), and returns
// how long that took. It fails t, with haproxy's output, when limit passes
// first or haproxy exits.
func (p *Proxy) WaitStatus(t testing.TB, backend, server, want string, limit time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	key := backend + "/" + server
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		all, err := p.Servers()
		s, ok := all[key]
		if err == nil && ok && strings.HasPrefix(s.Status, want) {
			return time.Since(began)
		}
		last := fmt.Sprintf("status %q", s.Status)
		if err != nil {
			last = err.Error()
		} else if !ok {
			last = "no such server"
		}
		select {
		case <-p.exited:
			t.Fatalf("haproxy exited (%v) while waiting for %s to be %s (%s):\n%s", p.cmd.ProcessState, key, want, last, p.Logs())
		case <-tick.C:
		}
		if time.Since(began) > limit {
			t.Fatalf("%s not %s within %v (%s):\n%s", key, want, limit, last, p.Logs())
		}
	}
}

// parseStat reads the servers' rows of the CSV that `show stat` answers:
// a header line "# pxname,svname,...", then one row per frontend, backend
// and server (type 0, 1, 2), each line ending in a comma.
func parseStat(out string) (map[string]Server, error) {
	head, body, ok := strings.Cut(out, "\n")
	if !strings.HasPrefix(head, "# ") || !ok {
		return nil, fmt.Errorf("haproxy show stat: not its CSV: %q", firstLine(out))
	}
	col := map[string]int{}
	for i, name := range strings.Split(strings.TrimPrefix(head, "# "), ",") {
		col[name] = i
	}
	for _, name := range []string{"pxname", "svname", "type", "status", "scur", "stot", "weight", "lastchg", "bout"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("haproxy show stat: no column %s in %q", name, head)
		}
	}
	r := csv.NewReader(strings.NewReader(body))
	r.FieldsPerRecord = -1
	servers := map[string]Server{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return servers, nil
		}
		if err != nil {
			return nil, fmt.Errorf("haproxy show stat: %w", err)
		}
		field := func(name string) string {
			if i := col[name]; i < len(rec) {
				return rec[i]
			}
			return ""
		}
		if field("type") != "2" {
			continue
		}
		s := Server{Backend: field("pxname"), Name: field("svname"), Status: field("status")}
		for _, f := range []struct {
			name string
			to   *int
		}{{"scur", &s.Current}, {"stot", &s.Total}, {"weight", &s.Weight}, {"bout", &s.BytesOut}} {
			if *f.to, err = atoi(field(f.name)); err != nil {
				return nil, fmt.Errorf("haproxy show stat: %s of %s/%s: %w", f.name, s.Backend, s.Name, err)
			}
		}
		secs, err := atoi(field("lastchg"))
		if err != nil {
			return nil, fmt.Errorf("haproxy show stat: lastchg of %s/%s: %w", s.Backend, s.Name, err)
		}
		s.LastChange = time.Duration(secs) * time.Second
		servers[s.Backend+"/"+s.Name] = s
	}
}

// atoi is strconv.Atoi with "" (a value haproxy does not have) as 0.
func atoi(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.Atoi(s)
}

// firstLine is the first line of s, for error messages.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// socketDir returns a temporary folder for t whose stats socket's path
// fits a Unix socket address (107 bytes): t.TempDir, unless the test's
// name makes that too long.
func socketDir(t testing.TB) string {
	dir := t.TempDir()
	if len(filepath.Join(dir, "stats.sock")) <= 107 {
		return dir
	}
	dir, err := os.MkdirTemp("", "haproxy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// logBuffer is a bytes.Buffer that haproxy's output is copied to while a
// test reads it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends b.
func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

// String returns what was written so far.
func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
