package faultproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// content is the file the origin serves.
var content = func() []byte {
	b := make([]byte, 256<<10)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}()

// chunkedBody is what the origin sends in pieces at /chunked.
const chunkedBody = "piece 0;piece 1;piece 2;piece 3;"

// startOrigin starts an origin serving content at /file with a strong
// ETag, a chunked body with a trailer at /chunked, an echo of the request
// body at /echo, at /hangup an answer after which it closes the connection
// without saying so, and at /timeout an answer followed by an unasked 408
// and a close.
func startOrigin(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", time.Unix(1e9, 0), bytes.NewReader(content))
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		for i := range 4 {
			fmt.Fprintf(w, "piece %d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", "4 pieces")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/hangup", func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		buf.Flush()
		c.Close()
	})
	mux.HandleFunc("/timeout", func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		buf.WriteString("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		buf.Flush()
		c.Close()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// setup starts an origin, a proxy to it and a client of the proxy with
// its own keep-alive connections.
func setup(t *testing.T) (*httptest.Server, *Proxy, *http.Client) {
	t.Helper()
	origin := startOrigin(t)
	p := Start(t, origin.Listener.Addr().String())
	return origin, p, newClient(t)
}

// newClient returns a client with its own transport, closed at the end of
// the test.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// get sends a GET for path with header h and fails the test if there is
// no response.
func get(t *testing.T, c *http.Client, url string, h ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// seen is what a client saw of one response, in a form to compare.
type seen struct {
	Status  int
	Header  http.Header
	Body    string
	Trailer http.Header
}

// see reads resp whole; it replaces a multipart boundary, which is random,
// with "BOUNDARY", and drops Date.
func see(t *testing.T, resp *http.Response) seen {
	t.Helper()
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	h := resp.Header.Clone()
	h.Del("Date")
	s := seen{Status: resp.StatusCode, Header: h, Body: string(body), Trailer: resp.Trailer}
	if _, params, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil && params["boundary"] != "" {
		b := params["boundary"]
		h.Set("Content-Type", strings.ReplaceAll(h.Get("Content-Type"), b, "BOUNDARY"))
		s.Body = strings.ReplaceAll(s.Body, b, "BOUNDARY")
	}
	return s
}

func TestPassThrough(t *testing.T) {
	t.Parallel()
	origin, p, c := setup(t)
	direct := newClient(t)
	cases := []struct {
		name, method, path string
		header             http.Header
		body               string
	}{
		{name: "whole", method: "GET", path: "/file"},
		{name: "range", method: "GET", path: "/file", header: http.Header{"Range": {"bytes=1000-1999"}}},
		{name: "open range", method: "GET", path: "/file", header: http.Header{"Range": {"bytes=200000-"}}},
		{name: "multi range", method: "GET", path: "/file", header: http.Header{"Range": {"bytes=0-9,100-109"}}},
		{name: "head", method: "HEAD", path: "/file"},
		{name: "not modified", method: "GET", path: "/file", header: http.Header{"If-None-Match": {`"v1"`}}},
		{name: "unsatisfiable", method: "GET", path: "/file", header: http.Header{"Range": {"bytes=999999-"}}},
		{name: "chunked with trailer", method: "GET", path: "/chunked"},
		{name: "head chunked", method: "HEAD", path: "/chunked"},
		{name: "post", method: "POST", path: "/echo", body: "hello, origin"},
		{name: "post chunked", method: "POST", path: "/echo", body: "chunked hello"},
		{name: "missing", method: "GET", path: "/nothing"},
	}
	var bodies int64
	for _, tc := range cases {
		do := func(c *http.Client, base string) seen {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if strings.Contains(tc.name, "chunked") {
					body = io.MultiReader(body) // unknown length: sent chunked
				}
			}
			req, err := http.NewRequest(tc.method, base+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			return see(t, resp)
		}
		want := do(direct, origin.URL)
		got := do(c, p.URL())
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: through the proxy (-direct +proxy):\n%s", tc.name, diff)
		}
		bodies += int64(len(got.Body))
	}
	if open, total := p.Conns(); total != 1 {
		t.Errorf("Conns() = %d open, %d in all; want every request on 1 kept-alive connection", open, total)
	}
	if got := p.Requests(); got != len(cases) {
		t.Errorf("Requests() = %d, want %d", got, len(cases))
	}
	if got := p.BytesFromOrigin(); got < bodies {
		t.Errorf("BytesFromOrigin() = %d, less than the %d body bytes received", got, bodies)
	}
}

func TestPipelined(t *testing.T) {
	t.Parallel()
	_, p, _ := setup(t)
	conn := dial(t, p)
	ranges := []string{"0-4", "10-14", "20-24"}
	var reqs strings.Builder
	for _, r := range ranges {
		fmt.Fprintf(&reqs, "GET /file HTTP/1.1\r\nHost: x\r\nRange: bytes=%s\r\n\r\n", r)
	}
	if _, err := io.WriteString(conn, reqs.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for _, r := range ranges {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var first, last int
		fmt.Sscanf(r, "%d-%d", &first, &last)
		if want := string(content[first : last+1]); string(body) != want {
			t.Errorf("range %s: body %q, want %q", r, body, want)
		}
	}
}

func TestOriginHangsUp(t *testing.T) {
	t.Parallel()
	_, p, _ := setup(t)
	conn := dial(t, p)
	io.WriteString(conn, "GET /hangup HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	// The origin closed the kept-alive connection: the proxy closes it too.
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the origin hung up, read %d bytes, %v; want EOF", n, err)
	}
}

func TestOriginSpeaksUnasked(t *testing.T) {
	t.Parallel()
	_, p, _ := setup(t)
	conn := dial(t, p)
	io.WriteString(conn, "GET /timeout HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	var got []int
	for range 2 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after statuses %v: %v", got, err)
		}
		io.Copy(io.Discard, resp.Body)
		got = append(got, resp.StatusCode)
	}
	if diff := cmp.Diff([]int{200, 408}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after the origin's 408, read %d bytes, %v; want EOF", n, err)
	}
}

func TestResetAfter(t *testing.T) {
	t.Parallel()
	_, p, c := setup(t)
	p.Set(Fault{ResetAfter: 1000})
	cases := []struct {
		name    string
		path    string
		h       []string
		want    int64
		wantErr bool
	}{
		{name: "whole", path: "/file", want: 1000, wantErr: true},
		{name: "chunked shorter", path: "/chunked", want: int64(len(chunkedBody))},
		{name: "range shorter", path: "/file", h: []string{"Range", "bytes=0-99"}, want: 100},
		{name: "range longer", path: "/file", h: []string{"Range", "bytes=5000-9999"}, want: 1000, wantErr: true},
	}
	for _, tc := range cases {
		resp := get(t, c, p.URL()+tc.path, tc.h...)
		n, err := io.Copy(io.Discard, resp.Body)
		if n != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: read %d bytes then %v; want %d bytes, error %t", tc.name, n, err, tc.want, tc.wantErr)
		}
		if tc.wantErr && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s: error %v, want a connection reset", tc.name, err)
		}
	}
	p.Set(Fault{ResetAfter: 10})
	resp := get(t, c, p.URL()+"/chunked")
	if n, err := io.Copy(io.Discard, resp.Body); n != 10 || err == nil {
		t.Errorf("chunked, reset after 10: read %d bytes then %v; want 10 then an error", n, err)
	}
}

func TestStall(t *testing.T) {
	t.Parallel()
	t.Run("until the deadline", func(t *testing.T) {
		t.Parallel()
		_, p, c := setup(t)
		p.Set(Fault{Stall: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", p.URL()+"/file", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("the head should come before the stall: %v", err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("read %d bytes then %v; want none before the deadline", n, err)
		}
	})
	t.Run("until Close", func(t *testing.T) {
		t.Parallel()
		_, p, c := setup(t)
		p.Set(Fault{Stall: time.Hour})
		resp := get(t, c, p.URL()+"/file")
		closed := make(chan struct{})
		go func() {
			p.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not end the stall")
		}
		if n, err := io.Copy(io.Discard, resp.Body); err == nil {
			t.Errorf("read %d bytes and no error from a proxy closed mid-stall", n)
		}
	})
	t.Run("then the body", func(t *testing.T) {
		t.Parallel()
		_, p, c := setup(t)
		p.Set(Fault{Stall: 50 * time.Millisecond})
		resp := get(t, c, p.URL()+"/file", "Range", "bytes=100-199")
		body, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(body, content[100:200]) {
			t.Errorf("after a short stall: body of %d bytes, %v; want content[100:200]", len(body), err)
		}
	})
}

func TestWrongContentRange(t *testing.T) {
	t.Parallel()
	_, p, c := setup(t)
	p.Set(Fault{WrongContentRange: true})
	size := len(content)
	cases := []struct {
		name, rng, want string
		body            []byte
	}{
		{"mid", "bytes=1000-1999", fmt.Sprintf("bytes 999-1998/%d", size), content[1000:2000]},
		{"start", "bytes=0-99", fmt.Sprintf("bytes 1-100/%d", size), content[:100]},
		{"whole", "", "", content},
	}
	for _, tc := range cases {
		var h []string
		if tc.rng != "" {
			h = []string{"Range", tc.rng}
		}
		resp := get(t, c, p.URL()+"/file", h...)
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Content-Range"); got != tc.want {
			t.Errorf("%s: Content-Range %q, want %q", tc.name, got, tc.want)
		}
		if !bytes.Equal(body, tc.body) {
			t.Errorf("%s: body changed", tc.name)
		}
	}
}

func TestETagAfterRequests(t *testing.T) {
	t.Parallel()
	_, p, c := setup(t)
	isRange := func(r *http.Request) bool { return r.Method == "GET" && r.Header.Get("Range") != "" }
	p.Set(Fault{ETag: `"v2"`, Match: isRange, AfterRequests: 1})
	steps := []struct {
		method, rng, want string
	}{
		{"GET", "bytes=0-9", `"v1"`}, // first match: let through
		{"HEAD", "", `"v1"`},         // no match
		{"GET", "bytes=10-19", `"v2"`},
		{"GET", "", `"v1"`},
		{"GET", "bytes=20-29", `"v2"`},
	}
	var got []string
	var want []string
	for _, s := range steps {
		req, _ := http.NewRequest(s.method, p.URL()+"/file", nil)
		if s.rng != "" {
			req.Header.Set("Range", s.rng)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got = append(got, resp.Header.Get("ETag"))
		want = append(want, s.want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ETags (-want +got):\n%s", diff)
	}
	p.Set(Fault{})
	if e := get(t, c, p.URL()+"/file", "Range", "bytes=0-9").Header.Get("ETag"); e != `"v1"` {
		t.Errorf("after Set(Fault{}): ETag %s, want the origin's", e)
	}
}

func TestRefuse(t *testing.T) {
	t.Parallel()
	_, p, c := setup(t)
	p.Set(Fault{Refuse: true})
	if resp, err := c.Get(p.URL() + "/file"); err == nil {
		resp.Body.Close()
		t.Fatal("a refusing proxy answered")
	}
	if _, total := p.Conns(); total == 0 || p.Requests() != 0 {
		t.Errorf("Conns() total %d, Requests() %d: want connections accepted and no request read", total, p.Requests())
	}
	p.Set(Fault{})
	if got := get(t, c, p.URL()+"/file").StatusCode; got != http.StatusOK {
		t.Errorf("after Set(Fault{}): status %d", got)
	}

	// On a connection already open, only the requests that match.
	p.Set(Fault{Refuse: true, Match: func(r *http.Request) bool { return r.Method == "HEAD" }})
	if got := get(t, c, p.URL()+"/file").StatusCode; got != http.StatusOK {
		t.Errorf("GET while HEADs are refused: status %d", got)
	}
	if resp, err := c.Head(p.URL() + "/file"); err == nil {
		resp.Body.Close()
		t.Error("a refused HEAD was answered")
	}
}

func TestGarbage(t *testing.T) {
	t.Parallel()
	_, p, c := setup(t)
	p.Set(Fault{Garbage: true})
	resp, err := c.Get(p.URL() + "/file")
	if err == nil {
		resp.Body.Close()
		t.Fatal("got a response to garbage")
	}
	if !strings.Contains(err.Error(), "malformed HTTP") {
		t.Errorf("error %v, want a malformed HTTP response", err)
	}
}

// TestNoLeaks is not parallel: it counts the goroutines of the whole test
// binary.
func TestNoLeaks(t *testing.T) {
	origin := startOrigin(t)
	c := newClient(t)
	base := runtime.NumGoroutine()
	p := Start(t, origin.Listener.Addr().String())

	get(t, c, p.URL()+"/file").Body.Close()
	p.Set(Fault{ResetAfter: 10})
	io.Copy(io.Discard, get(t, c, p.URL()+"/file").Body)
	p.Set(Fault{Stall: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	req, _ := http.NewRequestWithContext(ctx, "GET", p.URL()+"/file", nil)
	if resp, err := c.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	cancel()
	p.Set(Fault{Garbage: true})
	if resp, err := c.Get(p.URL() + "/file"); err == nil {
		resp.Body.Close()
	}
	p.Set(Fault{})
	get(t, c, p.URL()+"/chunked").Body.Close()
	c.CloseIdleConnections()

	waitFor(t, "every connection to close", func() bool {
		open, _ := p.Conns()
		return open == 0
	})
	p.Close()
	waitFor(t, "the goroutine count to return to its start", func() bool {
		return runtime.NumGoroutine() <= base
	})
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dial connects to p for a raw exchange, closed when t ends; a deadline
// fails a hang and is never reached otherwise.
func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}
