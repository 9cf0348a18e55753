package faultproxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// exchange is a request on its way to the origin and the fault its
// response gets (the zero Fault if none).
type exchange struct {
	req   *http.Request
	fault Fault
}

// link joins one client connection to its origin connection. Three
// goroutines serve it: upstream reads requests from the client and sends
// them to the origin, downstream sends the responses back, and
// watchOrigin tells downstream when the origin speaks or closes between
// responses.
type link struct {
	p              *Proxy
	client, origin net.Conn
	fromClient     *bufio.Reader
	toClient       *bufio.Writer
	fromOrigin     *bufio.Reader
	toOrigin       *bufio.Writer

	exchanges  chan exchange // upstream → downstream, in request order
	clientGone chan struct{} // closed when upstream stops reading requests
	closed     chan struct{} // closed when the link is torn down

	originReady chan error    // watchOrigin → downstream: the origin has bytes (nil) or failed
	resume      chan struct{} // downstream → watchOrigin: watch again
	heard       bool          // downstream has taken a report from originReady not yet used
	heardErr    error
}

// serve forwards one client connection until either side closes it, a
// fault ends it or the proxy is closed.
func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client, true)
	if p.refuseNew() {
		reset(client)
		return
	}
	origin, err := net.DialTimeout("tcp", p.origin, dialTimeout)
	if err != nil {
		reset(client)
		return
	}
	if !p.track(origin, false) {
		origin.Close()
		client.Close()
		return
	}
	defer p.untrack(origin, false)

	l := &link{
		p:           p,
		client:      client,
		origin:      origin,
		fromClient:  bufio.NewReader(client),
		toClient:    bufio.NewWriter(client),
		fromOrigin:  bufio.NewReader(countingReader{origin, p}),
		toOrigin:    bufio.NewWriter(origin),
		exchanges:   make(chan exchange, 16),
		clientGone:  make(chan struct{}),
		closed:      make(chan struct{}),
		originReady: make(chan error),
		resume:      make(chan struct{}),
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.upstream() }()
	go func() { defer wg.Done(); l.watchOrigin() }()
	l.downstream()
	close(l.closed)
	client.Close()
	origin.Close()
	wg.Wait()
}

// countingReader counts the bytes read from an origin connection.
type countingReader struct {
	r io.Reader
	p *Proxy
}

// Read reads from the origin and counts what it got.
func (c countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.fromOrigin.Add(int64(n))
	return n, err
}

// upstream reads requests from the client, queues each for downstream and
// forwards it to the origin, unless its fault answers it without the
// origin.
func (l *link) upstream() {
	defer close(l.exchanges)
	defer close(l.clientGone)
	for {
		req, err := http.ReadRequest(l.fromClient)
		if err != nil {
			return
		}
		ex := exchange{req: req, fault: l.p.decide(req)}
		// Queued before it is sent, so that downstream, hearing the
		// origin, can tell an answer from an unasked message.
		select {
		case l.exchanges <- ex:
		case <-l.closed:
			return
		}
		if ex.fault.Refuse || ex.fault.Garbage {
			return
		}
		if err := writeRequest(l.toOrigin, req); err != nil {
			return
		}
	}
}

// watchOrigin reports to downstream each time the origin has bytes to read
// or has failed, and waits to be resumed after a report of bytes.
func (l *link) watchOrigin() {
	for {
		_, err := l.fromOrigin.Peek(1)
		select {
		case l.originReady <- err:
		case <-l.closed:
			return
		}
		if err != nil {
			return
		}
		select {
		case <-l.resume:
		case <-l.closed:
			return
		}
	}
}

// downstream answers the queued requests in order until the link is to
// close.
func (l *link) downstream() {
	for {
		ex, ok := l.next()
		if !ok {
			return
		}
		switch {
		case ex.fault.Refuse:
			reset(l.client)
			return
		case ex.fault.Garbage:
			l.toClient.WriteString("\x00\x17garbage-not-http\r\n\r\n")
			l.toClient.Flush()
			return
		}
		if err := l.awaitOrigin(); err != nil {
			return
		}
		if !l.forward(ex) {
			return
		}
		l.resume <- struct{}{}
	}
}

// next returns the next exchange to answer. It returns false when there is
// none to wait for: the client sends no more, or the origin closed the idle
// connection or said something unasked, which is passed on before the
// connection closes, as the origin meant.
func (l *link) next() (exchange, bool) {
	select {
	case ex, ok := <-l.exchanges:
		return ex, ok
	case err := <-l.originReady:
		l.heard, l.heardErr = true, err
		select {
		case ex, ok := <-l.exchanges:
			return ex, ok
		default:
		}
		if err == nil {
			io.Copy(l.toClient, l.fromOrigin)
			l.toClient.Flush()
		}
		return exchange{}, false
	}
}

// awaitOrigin waits until the origin has begun to answer and returns an
// error if it failed instead.
func (l *link) awaitOrigin() error {
	if l.heard {
		l.heard = false
		return l.heardErr
	}
	return <-l.originReady
}

// forward passes on the origin's response to ex, spoiled by its fault, and
// reports whether the connection can carry another exchange.
func (l *link) forward(ex exchange) bool {
	resp, err := http.ReadResponse(l.fromOrigin, ex.req)
	if err != nil {
		return false
	}
	// Interim responses (100 Continue, 103 Early Hints) go through as
	// they are; the fault is for the final one.
	for resp.StatusCode/100 == 1 && resp.StatusCode != http.StatusSwitchingProtocols {
		if writeHead(l.toClient, resp) != nil || l.toClient.Flush() != nil {
			return false
		}
		if resp, err = http.ReadResponse(l.fromOrigin, ex.req); err != nil {
			return false
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return false
	}
	f := ex.fault
	rewriteHead(resp, f)
	if writeHead(l.toClient, resp) != nil || l.toClient.Flush() != nil {
		return false
	}
	if resp.Body == http.NoBody {
		return !resp.Close && !ex.req.Close
	}
	if f.Stall > 0 && !l.stall(f.Stall) {
		return false
	}
	cut, err := copyBody(l.toClient, resp.Body, chunked(resp.TransferEncoding),
		func() http.Header { return resp.Trailer }, f.ResetAfter)
	if cut {
		reset(l.client)
		return false
	}
	return err == nil && !resp.Close && !ex.req.Close
}

// stall waits for d, and reports false if the client or the proxy closed
// before then.
func (l *link) stall(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.clientGone:
		return false
	case <-l.p.done:
		return false
	}
}
