package netns_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mustserv/internal/testenv"
	"mustserv/internal/testenv/netns"
	"mustserv/internal/testenv/origins"
)

// helperEnv makes the test binary a helper program instead (see
// TestHelperProcess): "serve ADDR", "get URL" or "halfway".
const helperEnv = "MUSTSERV_NETNS_HELPER"

// limit bounds every wait for a helper program.
const limit = 20 * time.Second

// Traffic flows on every path a cluster test needs: from the test to a
// node, from a node to a server of the test on Host, and from node to node
// across the switch. Each server answers with the address it saw the
// request come from, which proves the path the request took.
func TestPaths(t *testing.T) {
	t.Parallel()
	n := netns.New(t)
	a, b := n.Add(t), n.Add(t)
	if !netip.MustParsePrefix("10.128.0.0/9").Contains(n.Host) || n.Prefix.Bits() != 24 ||
		n.Host != n.Prefix.Addr().Next() {
		t.Errorf("Host %s, Prefix %s: want .1 of a /24 of 10.128.0.0/9", n.Host, n.Prefix)
	}
	if a.Addr.As4()[3] != 10 || b.Addr.As4()[3] != 11 || !n.Prefix.Contains(a.Addr) || !n.Prefix.Contains(b.Addr) {
		t.Errorf("the nodes' addresses are %s and %s, want .10 and .11 of %s", a.Addr, b.Addr, n.Prefix)
	}
	onB := serve(t, b)

	t.Run("host to node", func(t *testing.T) {
		resp, err := http.Get("http://" + onB.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		checkFrom(t, string(body), n.Host)
	})
	t.Run("node to node", func(t *testing.T) {
		checkFrom(t, get(t, a, "http://"+onB.addr+"/"), a.Addr)
	})
	t.Run("node to host", func(t *testing.T) {
		l, err := net.Listen("tcp", netip.AddrPortFrom(n.Host, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%d %s", os.Getpid(), r.RemoteAddr)
		})}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		checkFrom(t, get(t, a, "http://"+l.Addr().String()+"/"), a.Addr)
	})
}

// Down cuts a node off: a request to it times out rather than being
// refused, and it is answered again after Up.
func TestDownUp(t *testing.T) {
	t.Parallel()
	n := netns.New(t)
	a := n.Add(t)
	url := "http://" + serve(t, a).addr + "/"
	client := &http.Client{Timeout: 500 * time.Millisecond}
	if _, err := fetch(client, url); err != nil {
		t.Fatalf("before Down: %v", err)
	}
	a.Down(t)
	_, err := fetch(client, url)
	var nerr net.Error
	if !errors.As(err, &nerr) || !nerr.Timeout() {
		t.Fatalf("GET while Down: %v, want a timeout", err)
	}
	a.Up(t)
	deadline := time.Now().Add(limit)
	for {
		_, err := fetch(client, url)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer within %v of Up: %v", limit, err)
		}
	}
}

// Command's process is the program itself, not an `ip` waiting for it: its
// pid is the one the program reports, and Kill kills the program (the
// SIGKILL is its exit status, and its port is closed).
func TestCommandKill(t *testing.T) {
	t.Parallel()
	n := netns.New(t)
	h := serve(t, n.Add(t))
	if h.pid != h.cmd.Process.Pid {
		t.Fatalf("the program's pid is %d, Command's Process.Pid %d: ip did not exec it", h.pid, h.cmd.Process.Pid)
	}
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.exited:
	case <-time.After(limit):
		t.Fatalf("the program did not exit within %v of Kill", limit)
	}
	ws, ok := h.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("exit status after Kill: %v, want killed by SIGKILL", h.cmd.ProcessState)
	}
	c, err := net.DialTimeout("tcp", h.addr, limit)
	if err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Kill", h.addr)
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s after Kill: %v, want connection refused", h.addr, err)
	}
}

// The cleanup removes every interface and namespace New and Add made, with
// a program still running in a namespace, and when the test fails half-way
// (in a test process of its own, which runs at the same time as the other
// tests here: their names must not clash).
func TestCleanup(t *testing.T) {
	t.Parallel()
	testenv.NeedRoot(t) // as the half-way test does
	before := names(t)
	var made []string
	t.Run("complete", func(t *testing.T) {
		n := netns.New(t)
		a, b := n.Add(t), n.Add(t)
		serve(t, a)
		made = []string{"link " + n.Name, "netns " + n.Name, "netns " + a.Name, "netns " + b.Name}
		during := names(t)
		for _, m := range made {
			if !during[m] {
				t.Errorf("%s is not there while the test runs", m)
			}
		}
		for m := range during {
			if strings.HasPrefix(m, "link ") && !before[m] && strings.Contains(m, n.Name) && m != "link "+n.Name {
				t.Errorf("New and Add made %s in the test's namespace, want only link %s", m, n.Name)
			}
		}
	})

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = helperEnviron("halfway")
	out, err := runBounded(cmd)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(string(out), "failing half-way on purpose") {
		t.Fatalf("the half-way test: %v, want it to fail on purpose:\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "made" {
			made = append(made, "link "+f[1], "netns "+f[1], "netns "+f[2], "netns "+f[3])
		}
	}
	if len(made) != 8 {
		t.Fatalf("the half-way test did not tell what it made:\n%s", out)
	}
	after := names(t)
	for _, m := range made {
		if after[m] {
			t.Errorf("%s is still there after the cleanup", m)
		}
	}
}

// A versitygw listening on Host (origins.VersityOptions.Host) is reachable
// from a node: it refuses the unsigned request, with its S3 error.
func TestVersityOnHost(t *testing.T) {
	t.Parallel()
	bin := testenv.NeedTool(t, "versitygw")
	n := netns.New(t)
	a := n.Add(t)
	v, err := origins.NewVersity(bin, origins.VersityOptions{Host: n.Host.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	if want := "http://" + n.Host.String() + ":"; !strings.HasPrefix(v.Endpoint, want) {
		t.Errorf("Endpoint %s, want %s...", v.Endpoint, want)
	}
	code, body := getAny(t, a, v.Endpoint+"/")
	if code != http.StatusForbidden || !strings.Contains(body, "AccessDenied") {
		t.Errorf("unsigned GET / of versitygw from a node: %d %s, want 403 AccessDenied", code, body)
	}
}

// Two Nets of one test have their own names and /24s.
func TestTwoNets(t *testing.T) {
	t.Parallel()
	n1, n2 := netns.New(t), netns.New(t)
	if n1.Name == n2.Name || n1.Prefix.Overlaps(n2.Prefix) {
		t.Errorf("two Nets: %s on %s and %s on %s, want different names and /24s", n1.Name, n1.Prefix, n2.Name, n2.Prefix)
	}
}

// TestHelperProcess is not a test but the program the tests run, in a
// namespace or on their own, when helperEnv is set.
func TestHelperProcess(t *testing.T) {
	mode, arg, _ := strings.Cut(os.Getenv(helperEnv), " ")
	switch mode {
	case "":
		return
	case "serve":
		l, err := net.Listen("tcp", arg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("listening %s %d\n", l.Addr(), os.Getpid())
		err = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%d %s", os.Getpid(), r.RemoteAddr)
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	case "get":
		client := &http.Client{Timeout: limit / 2}
		resp, err := client.Get(arg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%d ", resp.StatusCode)
		io.Copy(os.Stdout, resp.Body)
		os.Exit(0)
	case "halfway":
		n := netns.New(t)
		a, b := n.Add(t), n.Add(t)
		fmt.Printf("made %s %s %s\n", n.Name, a.Name, b.Name)
		t.Fatal("failing half-way on purpose")
	default:
		t.Fatalf("unknown %s %q", helperEnv, mode)
	}
}

// helper is a helper program serving HTTP in a namespace.
type helper struct {
	cmd    *exec.Cmd
	addr   string        // where it listens
	pid    int           // its pid, as it sees it
	exited chan struct{} // closed when it has exited; then cmd.ProcessState is set
	stderr bytes.Buffer  // read only after exited
}

// serve starts a helper program serving HTTP on a free port of ns, and
// returns once it listens. It is killed when t ends.
func serve(t *testing.T, ns *netns.NS) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: ns.Command(exe, "-test.run=^TestHelperProcess$"), exited: make(chan struct{})}
	h.cmd.Env = helperEnviron("serve " + netip.AddrPortFrom(ns.Addr, 0).String())
	h.cmd.Stderr = &h.stderr
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h.cmd.Stdout = w
	err = h.cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() { h.cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() { h.cmd.Process.Kill(); <-h.exited })

	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		lines <- line
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(limit):
		h.cmd.Process.Kill()
		<-h.exited
		t.Fatalf("the helper in %s did not listen within %v: %s", ns.Name, limit, &h.stderr)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "listening" {
		h.cmd.Process.Kill()
		<-h.exited
		t.Fatalf("the helper in %s said %q: %s", ns.Name, line, &h.stderr)
	}
	h.addr = f[1]
	if h.pid, err = strconv.Atoi(f[2]); err != nil {
		t.Fatal(err)
	}
	return h
}

// get GETs url from a helper program in ns and returns the body of its
// 200 answer.
func get(t *testing.T, ns *netns.NS, url string) string {
	t.Helper()
	code, body := getAny(t, ns, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s in %s: %d %s", url, ns.Name, code, body)
	}
	return body
}

// getAny GETs url from a helper program in ns and returns the status code
// and body of its answer.
func getAny(t *testing.T, ns *netns.NS, url string) (int, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(exe, "-test.run=^TestHelperProcess$")
	cmd.Env = helperEnviron("get " + url)
	out, err := runBounded(cmd)
	if err != nil {
		t.Fatalf("GET %s in %s: %v: %s", url, ns.Name, err, out)
	}
	status, body, _ := strings.Cut(string(out), " ")
	code, err := strconv.Atoi(status)
	if err != nil {
		t.Fatalf("GET %s in %s: the helper said %q", url, ns.Name, out)
	}
	return code, body
}

// helperEnviron is the environment of a helper program doing what says.
// Built with -race, a program that exits with status 0 first sleeps for
// the race detector's atexit_sleep_ms, one second unless told otherwise.
func helperEnviron(what string) []string {
	return append(os.Environ(), helperEnv+"="+what,
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// runBounded runs cmd and returns its combined output, killing it if it
// runs for longer than limit.
func runBounded(cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("%s did not finish within %v", cmd, limit)
	}
}

// fetch GETs url with client and returns the body of its 200 answer.
func fetch(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), err
}

// checkFrom checks that a server answered body ("pid host:port") to a
// request from the address want.
func checkFrom(t *testing.T, body string, want netip.Addr) {
	t.Helper()
	f := strings.Fields(body)
	if len(f) != 2 {
		t.Fatalf("answer %q, want the pid and the client's address", body)
	}
	ap, err := netip.ParseAddrPort(f[1])
	if err != nil || ap.Addr() != want {
		t.Errorf("the request came from %s, want %s", f[1], want)
	}
}

// names lists the interfaces of the test's namespace ("link NAME") and the
// named namespaces ("netns NAME").
func names(t *testing.T) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, c := range []struct {
		kind string
		args []string
		name func(fields []string) string
	}{
		// "4: eth0: <BROADCAST..." or "7: msb1a2b3c@if2: <...".
		{"link", []string{"-o", "link"}, func(f []string) string { n, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@"); return n }},
		// "msb1a2b3c-0 (id: 2)" or "msb1a2b3c".
		{"netns", []string{"netns", "list"}, func(f []string) string { return f[0] }},
	} {
		out, err := exec.Command("ip", c.args...).Output()
		if err != nil {
			t.Fatalf("ip %s: %v", strings.Join(c.args, " "), err)
		}
		for line := range strings.Lines(string(out)) {
			if f := strings.Fields(line); len(f) >= 2 || (len(f) == 1 && c.kind == "netns") {
				set[c.kind+" "+c.name(f)] = true
			}
		}
	}
	return set
}
