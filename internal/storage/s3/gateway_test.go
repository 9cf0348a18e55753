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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mustserv/internal/testenv"
	"mustserv/internal/testenv/origins"
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

// gateway is the tests' versitygw, with a counter for unique bucket
// names. Objects are written through S3 (signed PUTs), so the tests also
// see versitygw's own ETags and times.
type gateway struct {
	*origins.Versity
	buckets atomic.Int64 // buckets made, for unique names
	// addr and startup are Versity's Addr and Startup, by the names
	// s3_test.go knows them.
	addr    string
	startup time.Duration
}

var (
	shared     gateway
	sharedOnce sync.Once
	sharedErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.Versity != nil {
		shared.Close()
	}
	os.Exit(code)
}

// startGateway returns the shared versitygw, starting it on first use; it
// skips (or fails in CI) without the program.
func startGateway(t *testing.T) *gateway {
	t.Helper()
	bin := testenv.NeedTool(t, "versitygw")
	sharedOnce.Do(func() {
		shared.Versity, sharedErr = origins.NewVersity(bin, origins.VersityOptions{
			AccessKey: testAccess, SecretKey: testSecret, VirtualDomain: virtualDomain})
		if sharedErr == nil {
			shared.addr, shared.startup = shared.Addr, shared.Startup
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return &shared
}

// signer of the test credentials.
func (g *gateway) signer() signer {
	return signer{access: testAccess, secret: testSecret, region: "us-east-1"}
}

// send sends a request signed with the test credentials and fails the
// test unless S3 answers want.
func (g *gateway) send(t *testing.T, method, path string, body []byte, want int) {
	t.Helper()
	req, err := http.NewRequest(method, g.Endpoint+path, bytes.NewReader(body))
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
		RawQuery: url.Values{"endpoint": {g.Endpoint}, "region": {"us-east-1"}}.Encode()}
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
