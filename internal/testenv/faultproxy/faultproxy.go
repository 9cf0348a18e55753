// Package faultproxy provides a fault-injecting TCP proxy for tests of the
// remote storage backends: it sits between MuStServ and an HTTP/1.1 origin
// (nginx, an S3 server, another MuStServ) and, on demand, makes the origin
// look down, reset or stall mid-body, lie in Content-Range or ETag, or answer
// with bytes that are not HTTP.
//
// It is a real proxy on 127.0.0.1: every accepted connection gets its own
// connection to the origin, and requests and responses are parsed so that
// keep-alive connections carry several exchanges and a fault can pick the
// responses it spoils. Bodies keep their framing (Content-Length, chunked,
// until close; none for HEAD, 1xx, 204 and 304), though chunk boundaries are
// not preserved and header names are sent in canonical form.
//
// It does not do TLS, HTTP/2 or protocol upgrades (a 101 answer closes the
// connection), and it is imported by tests only.
package faultproxy

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dialTimeout bounds a dial to the origin, which is always local in tests.
const dialTimeout = 5 * time.Second

// Fault says how the proxy spoils the exchanges it applies to. The zero
// Fault forwards everything unchanged. Several fields may be combined: a
// response can carry a new ETag, stall after its head and then reset.
type Fault struct {
	// Refuse closes connections at once with a reset, like an origin that
	// is down. Without Match and AfterRequests new connections are reset as
	// soon as they are accepted; otherwise, and on connections already open,
	// a request the fault applies to is not forwarded and its connection is
	// reset instead.
	Refuse bool

	// ResetAfter, when > 0, resets the client connection (a TCP RST) once
	// this many bytes of a response body have been forwarded; a shorter
	// body is forwarded whole. Bytes the kernel has not yet sent when the
	// reset happens are lost, so a client that stops reading sees fewer.
	ResetAfter int64

	// Stall, when > 0, forwards a response's head and then holds its body
	// back for this long, or until the client closes the connection or the
	// proxy is closed.
	Stall time.Duration

	// WrongContentRange rewrites the Content-Range of a 206 response to
	// claim a start one byte off (one earlier, or one later for a range
	// starting at 0), keeping its length; the body is unchanged.
	WrongContentRange bool

	// ETag, if set, replaces the ETag of responses (or adds one). The
	// origin still sees and checks its own ETag in If-Match and If-Range.
	ETag string

	// Garbage answers a request with bytes that are not HTTP, without
	// forwarding it, and then closes the connection.
	Garbage bool

	// Match, if set, limits the fault to the requests it returns true for.
	// It gets a copy of the request without its body and must not call
	// the Proxy.
	Match func(*http.Request) bool

	// AfterRequests lets this many matching requests through unspoiled:
	// the fault applies from the (AfterRequests+1)th matching request
	// after Set on.
	AfterRequests int
}

// Proxy is a running fault-injecting proxy. Its methods are safe for
// concurrent use.
type Proxy struct {
	origin    string
	ln        net.Listener
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // the accept loop and every connection

	mu       sync.Mutex
	fault    Fault
	gen      uint64 // bumped by Set, so a Match run against an old fault is not counted
	matched  int    // requests Match accepted since Set
	live     map[net.Conn]bool
	open     int
	total    int
	requests int

	fromOrigin atomic.Int64
}

// Start starts a proxy on 127.0.0.1 to origin (host:port) that forwards
// everything until Set says otherwise. It is closed when the test ends;
// start the origin first, so that the proxy is closed before it (cleanups
// run last first) and no origin handler is left writing to a stalled proxy.
func Start(t testing.TB, origin string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: %v", err)
	}
	p := &Proxy{
		origin: origin,
		ln:     ln,
		done:   make(chan struct{}),
		live:   map[net.Conn]bool{},
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr returns the proxy's address, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns "http://" followed by Addr.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// Set replaces the fault. It applies to requests read from now on, on new
// and open connections, and restarts the count of AfterRequests.
func (p *Proxy) Set(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
	p.gen++
	p.matched = 0
}

// Conns returns how many client connections are open now and how many were
// accepted in all, refused ones included. A connection counts as open until
// everything serving it has stopped.
func (p *Proxy) Conns() (open, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open, p.total
}

// Requests returns how many requests clients sent through the proxy,
// including those a fault answered in place of the origin.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// BytesFromOrigin returns how many bytes the proxy has read from origin
// connections, heads and bodies.
func (p *Proxy) BytesFromOrigin() int64 { return p.fromOrigin.Load() }

// Close stops listening, closes every connection (ending stalls) and waits
// until everything the proxy started has stopped. It may be called more
// than once.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		close(p.done)
		p.ln.Close()
		for c := range p.live {
			c.Close()
		}
	})
	p.wg.Wait()
}

// accept accepts client connections until the listener is closed.
func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c, true) {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track records an open connection so that Close can close it, unless the
// proxy is already closed.
func (p *Proxy) track(c net.Conn, client bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return false
	default:
	}
	p.live[c] = true
	if client {
		p.open++
		p.total++
	}
	return true
}

// untrack forgets a connection that has been closed.
func (p *Proxy) untrack(c net.Conn, client bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.live, c)
	if client {
		p.open--
	}
}

// refuseNew reports whether a new connection is to be reset at once.
func (p *Proxy) refuseNew() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fault
	return f.Refuse && f.Match == nil && f.AfterRequests == 0
}

// decide counts req and returns the fault to apply to its exchange: the
// current one if it applies, else the zero Fault.
func (p *Proxy) decide(req *http.Request) Fault {
	p.mu.Lock()
	p.requests++
	p.mu.Unlock()
	view := req.Clone(req.Context())
	view.Body = http.NoBody
	for {
		p.mu.Lock()
		f, gen := p.fault, p.gen
		p.mu.Unlock()
		// Match runs unlocked; if Set ran meanwhile, decide again.
		matches := f.Match == nil || f.Match(view)
		p.mu.Lock()
		if gen != p.gen {
			p.mu.Unlock()
			continue
		}
		if matches {
			p.matched++
		}
		applies := matches && p.matched > f.AfterRequests
		p.mu.Unlock()
		if applies {
			return f
		}
		return Fault{}
	}
}

// reset closes c with a TCP RST instead of a FIN, so the peer sees
// "connection reset by peer".
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
