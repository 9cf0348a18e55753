package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// The tests share one versitygw: the first test that needs it starts it,
// TestMain stops it after the last.
const (
	testAccess = "mustservtest"
	testSecret = "s3cr3t-Never-In-Errors"
	// virtualDomain is the gateway's domain for virtual-host style
	// (bucket.s3.test); the tests' clients dial the gateway for any host.
	virtualDomain = "s3.test"
)

// gateway is a versitygw serving a temporary folder over HTTP.
type gateway struct {
	once     sync.Once
	endpoint string // http://127.0.0.1:port
	addr     string // 127.0.0.1:port
	dir      string
	cmd      *exec.Cmd
	exited   chan struct{}
	startup  time.Duration
	err      error
	log      bytes.Buffer
	buckets  atomic.Int64 // buckets made, for unique names
}

var shared gateway

func TestMain(m *testing.M) {
	code := m.Run()
	shared.stop()
	os.Exit(code)
}

// startGateway returns the shared versitygw, starting it on first use; it
// skips (or fails in CI) without the program.
func startGateway(t *testing.T) *gateway {
	t.Helper()
	bin := testenv.NeedTool(t, "versitygw")
	shared.once.Do(func() { shared.err = shared.start(bin) })
	if shared.err != nil {
		t.Fatalf("versitygw: %v", shared.err)
	}
	return &shared
}

// start runs versitygw on a free port and waits until it answers. The
// port is free when picked but may be taken before versitygw listens:
// then it exits, and another port is tried.
func (g *gateway) start(bin string) error {
	dir, err := os.MkdirTemp("", "mustserv-s3-*")
	if err != nil {
		return err
	}
	g.dir = dir
	for try := 1; ; try++ {
		err := g.launch(bin)
		if err == nil || try == 3 {
			return err
		}
	}
}

// launch runs versitygw once.
func (g *gateway) launch(bin string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	began := time.Now()
	g.log.Reset()
	g.cmd = exec.Command(bin, "--port", addr, "--virtual-domain", virtualDomain, "--quiet", "posix", g.dir)
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+testAccess, "ROOT_SECRET_KEY="+testSecret)
	g.cmd.Stdout, g.cmd.Stderr = &g.log, &g.log
	if err := g.cmd.Start(); err != nil {
		return err
	}
	g.exited = make(chan struct{})
	go func() { g.cmd.Wait(); close(g.exited) }()
	g.endpoint = "http://" + addr
	g.addr = addr
	if err := g.waitReady(30 * time.Second); err != nil {
		g.cmd.Process.Kill()
		<-g.exited // the log is written no more
		return fmt.Errorf("%w\n%s", err, g.log.String())
	}
	g.startup = time.Since(began)
	return nil
}

// waitReady polls the gateway until it answers HTTP, it exits, or the
// time is up.
func (g *gateway) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(g.endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-g.exited:
			return fmt.Errorf("exited before answering: %v", g.cmd.ProcessState)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer on %s within %v: %v", g.endpoint, limit, err)
		}
	}
}

// stop kills the gateway and removes its folder.
func (g *gateway) stop() {
	if g.cmd != nil && g.cmd.Process != nil {
		g.cmd.Process.Kill()
		<-g.exited
	}
	if g.dir != "" {
		os.RemoveAll(g.dir)
	}
}

// signer of the test credentials.
func (g *gateway) signer() signer {
	return signer{access: testAccess, secret: testSecret, region: "us-east-1"}
}

// send sends a request signed with the test credentials and fails the
// test unless S3 answers want.
func (g *gateway) send(t *testing.T, method, path string, body []byte, want int) {
	t.Helper()
	req, err := http.NewRequest(method, g.endpoint+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	g.signer().sign(req, time.Now(), hex.EncodeToString(sum[:]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d: %v", method, path, resp.Status, want, statusError(resp))
	}
}

// newBucket creates a bucket of its own for the test (named after it).
func (g *gateway) newBucket(t *testing.T) string {
	t.Helper()
	name := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()))
	name = fmt.Sprintf("%s-%d", strings.Trim(name[:min(len(name), 40)], "-"), g.buckets.Add(1))
	g.send(t, http.MethodPut, "/"+name, nil, http.StatusOK)
	return name
}

// put stores data under key in bucket.
func (g *gateway) put(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	g.send(t, http.MethodPut, "/"+bucket+"/"+escapePath(key), data, http.StatusOK)
}

// putAll stores files (names relative to prefix) in bucket.
func (g *gateway) putAll(t *testing.T, bucket, prefix string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		key := name
		if prefix != "" {
			key = prefix + "/" + name
		}
		g.put(t, bucket, key, data)
	}
}

// virtualClient returns a client that reaches the gateway whatever the
// host asked for: bucket.s3.test needs no DNS.
func (g *gateway) virtualClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, g.addr)
	}}
	return &http.Client{Transport: tr}
}

// backend returns a Backend of bucket/prefix on the gateway.
func (g *gateway) backend(t *testing.T, bucket, prefix string, opt Options) *Backend {
	t.Helper()
	u := &url.URL{Scheme: "s3", Host: bucket, Path: "/" + prefix,
		RawQuery: url.Values{"endpoint": {g.endpoint}, "region": {"us-east-1"}}.Encode()}
	if opt.AccessKey == "" {
		opt.AccessKey, opt.SecretKey = testAccess, testSecret
	}
	opt.getenv = func(string) string { return "" }
	b, err := New(u, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
