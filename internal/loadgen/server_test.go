package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// mediaServer is the server under test: it serves a file of size bytes,
// counted from the requested offset in chunks written at fixed times
// after the request arrived, and records the Range header of each
// request. Its waits are its pacing, as a pacing server's are.
type mediaServer struct {
	size  int64
	chunk int64
	at    func(k int) time.Duration // when chunk k is written
	// reject answers request n (from 0) with 503 and this Retry-After,
	// when it returns true.
	reject func(n int) (string, bool)
	// status answers request n with this status and no media, unless 0.
	status func(n int) int
	// cut ends request n's body after this many bytes, unless 0, and
	// closes the connection, as a server that dies does.
	cut func(n int) int64

	mu     sync.Mutex
	ranges []string
}

// every returns a schedule of one chunk per interval, the first at once.
func every(interval time.Duration) func(int) time.Duration {
	return func(k int) time.Duration { return time.Duration(k) * interval }
}

var openRange = regexp.MustCompile(`^bytes=(\d+)-$`)

func (s *mediaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	req := len(s.ranges)
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.mu.Unlock()
	if s.reject != nil {
		if ra, ok := s.reject(req); ok {
			w.Header().Set("Retry-After", ra)
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
	}
	if s.status != nil {
		if code := s.status(req); code != 0 {
			http.Error(w, http.StatusText(code), code)
			return
		}
	}
	var cut int64
	if s.cut != nil {
		cut = s.cut(req)
	}
	var off int64
	if m := openRange.FindStringSubmatch(r.Header.Get("Range")); m != nil {
		off, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if off >= s.size {
		http.Error(w, "bad range", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	w.Header().Set("Content-Type", "audio/mpeg")
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, s.size-1, s.size))
	w.Header().Set("Content-Length", strconv.FormatInt(s.size-off, 10))
	w.WriteHeader(http.StatusPartialContent)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil { // the headers go at once
		return
	}
	start := time.Now()
	buf := make([]byte, s.chunk)
	var wait *time.Timer
	for k, left := 0, s.size-off; left > 0; k++ {
		if d := time.Until(start.Add(s.at(k))); d > 0 {
			if wait == nil {
				wait = time.NewTimer(d)
				defer wait.Stop()
			} else {
				wait.Reset(d)
			}
			select {
			case <-wait.C:
			case <-r.Context().Done():
				return
			}
		}
		n := min(left, s.chunk)
		sent := s.size - off - left
		if cut > 0 {
			n = min(n, cut-sent)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		left -= n
		if cut > 0 && sent+n == cut {
			// The bytes written so far are flushed: the client gets them,
			// then the connection closes in the middle of the body.
			panic(http.ErrAbortHandler)
		}
	}
}

func (s *mediaServer) requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// pipeListener is an in-memory network for players under synctest: each
// dial makes a net.Pipe whose other end the server accepts. Time then is
// the bubble's, and data moves in no time.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
