package pace

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// sink is where a handed-over stream's body goes: the socket, with the
// bytes coming from the stream's file.
type sink interface {
	// send writes up to n bytes without blocking. A full socket is
	// errAgain, possibly after some bytes.
	send(n int64) (int64, error)
	// await blocks until it wrote some of n bytes, the client took nothing
	// for stall, or interrupt was called.
	await(n int64, stall time.Duration) (int64, error)
	// interrupt makes a running or later await return at once.
	interrupt()
	// close ends the connection and lets go of the file.
	close()
}

var errAgain = errors.New("pace: socket full")

// handed is a stream the loop drives.
type handed struct {
	s    *Stream
	out  sink
	left int64 // body bytes still to send
	due  int64 // when to plan it next (ns since base)
	idx  int   // in the heap; -1 when out of it
	err  error // set by await
	// queuedAt is when await began (ns since base), for the stall count.
	queuedAt int64
	size     int64                       // body bytes handed over
	done     func(sent int64, err error) // may be nil
}

// loop owns every handed-over stream: it keeps them in a heap by due time
// and, on each wake-up, sends a slice of each one that is due. A stream
// whose socket is full leaves the heap for a goroutine blocked in await
// until the socket drains; only such streams cost a goroutine.
type loop struct {
	p *Pacer

	mu      sync.Mutex
	in      []*handed // new streams and those back from await
	stops   []*handed // streams Stop ended, to be made due at once
	all     map[*handed]struct{}
	cutting bool
	stopped bool
	zero    chan struct{} // closed when all is empty, once someone waits
	wake    chan struct{}
	done    chan struct{}
}

func newLoop(p *Pacer) *loop {
	l := &loop{p: p, all: map[*handed]struct{}{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.run()
	return l
}

// give puts x into the loop's intake.
func (l *loop) give(x *handed) {
	l.mu.Lock()
	l.in = append(l.in, x)
	l.mu.Unlock()
	l.poke()
}

func (l *loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// add registers a new stream; false once the loop has stopped.
func (l *loop) add(x *handed) bool {
	l.mu.Lock()
	if l.stopped || l.cutting {
		l.mu.Unlock()
		return false
	}
	l.all[x] = struct{}{}
	l.in = append(l.in, x)
	l.mu.Unlock()
	l.p.handed.Add(1)
	l.poke()
	return true
}

func (l *loop) run() {
	defer close(l.done)
	var h streamHeap
	var spare, spareStops []*handed
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		l.mu.Lock()
		in, stops := l.in, l.stops
		l.in, l.stops = spare[:0], spareStops[:0]
		cut, stopped := l.cutting, l.stopped
		l.mu.Unlock()
		for _, x := range in {
			switch {
			case x.err != nil || x.left == 0:
				l.finish(x, x.err)
			case cut:
				l.p.cut.Add(1)
				l.finish(x, ErrClosed)
			default:
				heap.Push(&h, x)
			}
		}
		clear(in)
		spare = in
		// A stopped stream in the heap is made due: plan ends it below.
		// One not in it is in await (Stop interrupted it), on its way
		// in, or finished.
		for _, x := range stops {
			if x.idx >= 0 {
				x.due = 0
				heap.Fix(&h, x.idx)
			}
		}
		clear(stops)
		spareStops = stops
		if cut {
			for h.Len() > 0 {
				l.p.cut.Add(1)
				l.finish(heap.Pop(&h).(*handed), ErrClosed)
			}
		}
		if stopped && h.Len() == 0 {
			l.mu.Lock()
			empty := len(l.all) == 0 && len(l.in) == 0
			l.mu.Unlock()
			if empty {
				return
			}
		}

		now := l.p.now()
		for h.Len() > 0 && h[0].due <= now+int64(slack) {
			x := h[0]
			n, at, stop := l.p.plan(x.s, now, x.left)
			if stop {
				heap.Pop(&h)
				l.finish(x, ErrStopped)
				continue
			}
			if n == 0 {
				x.due = at
				heap.Fix(&h, 0)
				continue
			}
			m, err := x.out.send(n)
			if m > 0 {
				x.left -= m
				l.p.account(x.s, now, m)
			}
			switch {
			case x.left == 0:
				heap.Pop(&h)
				l.finish(x, nil)
			case errors.Is(err, errAgain):
				heap.Pop(&h)
				x.queuedAt = now
				go l.await(x, n-m)
			case err != nil:
				heap.Pop(&h)
				l.finish(x, err)
			default:
				x.due = now // plan decides when it is next due
				heap.Fix(&h, 0)
			}
		}

		if h.Len() > 0 {
			t.Reset(time.Duration(h[0].due - l.p.now()))
		}
		select {
		case <-t.C:
		case <-l.wake:
		}
	}
}

// await waits, in its own goroutine, for x's socket to take the rest of
// the slice it could not, then gives x back to the loop.
func (l *loop) await(x *handed, n int64) {
	m, err := x.out.await(n, l.p.opts.Stall)
	now := l.p.now()
	if m > 0 {
		x.left -= m
		l.p.account(x.s, now, m)
	}
	// The client's buffer ran dry if it took nothing for longer than the
	// media time the burst gave it.
	if now-x.queuedAt > max(x.s.buffer, int64(l.p.opts.Step)) {
		l.p.stalls.Add(1)
	}
	if err != nil {
		// Cut by the stall deadline, Close or Stop; any other error is
		// the client's leaving. Stop counts its own.
		if errors.Is(err, errInterrupted) || errors.Is(err, os.ErrDeadlineExceeded) {
			if l.p.isStopped(x.s) {
				err = ErrStopped
			} else {
				l.p.cut.Add(1)
			}
		}
		x.err = err
	}
	x.due = now
	l.give(x)
}

var errInterrupted = errors.New("pace: interrupted")

// finish ends x: closes its connection and releases its reservation.
func (l *loop) finish(x *handed, err error) {
	x.out.close()
	x.s.Release()
	l.mu.Lock()
	delete(l.all, x)
	if len(l.all) == 0 && l.zero != nil {
		close(l.zero)
		l.zero = nil
	}
	l.mu.Unlock()
	l.p.handed.Add(-1)
	if x.done != nil {
		x.done(x.size-x.left, err)
	}
}

// drain waits until every handed stream has finished or ctx ends.
func (l *loop) drain(ctx context.Context) error {
	l.mu.Lock()
	if len(l.all) == 0 {
		l.mu.Unlock()
		return nil
	}
	if l.zero == nil {
		l.zero = make(chan struct{})
	}
	z := l.zero
	l.mu.Unlock()
	select {
	case <-z:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopStream ends x, which Stop has marked: one waiting for its socket
// in await is interrupted and comes back; the loop makes one in its heap
// due, and plan ends it.
func (l *loop) stopStream(x *handed) {
	l.mu.Lock()
	if _, ok := l.all[x]; !ok {
		l.mu.Unlock()
		return // finished already, or never taken (the loop was cutting)
	}
	x.out.interrupt()
	l.stops = append(l.stops, x)
	l.mu.Unlock()
	l.poke()
}

// isStopped reports whether Stop ended s.
func (p *Pacer) isStopped(s *Stream) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.stopped
}

// stop cuts every stream and ends the loop once they are gone.
func (l *loop) stop() {
	l.mu.Lock()
	l.cutting, l.stopped = true, true
	for x := range l.all {
		x.out.interrupt() // one in await returns and comes back to be cut
	}
	l.mu.Unlock()
	l.poke()
	<-l.done
}

// Hand-over of a stream: the loop sends n body bytes to out.
func (s *Stream) handTo(out sink, n int64, done func(int64, error)) error {
	p := s.p
	x := &handed{s: s, out: out, left: n, size: n, due: p.now(), idx: -1, done: done}
	l := p.startLoop(x)
	if l == nil {
		out.close()
		s.Release()
		return ErrClosed
	}
	if !l.add(x) {
		out.close()
		s.Release()
		return ErrClosed
	}
	return nil
}

// startLoop starts the loop on first use and records that x's stream is
// the loop's (for Streams and Stop); nil once the Pacer is closed.
func (p *Pacer) startLoop(x *handed) *loop {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if p.loop == nil {
		p.loop = newLoop(p)
	}
	x.s.h = x
	return p.loop
}

// Shutdown waits for every handed-over stream to finish, up to ctx's end,
// then cuts what is left and stops the loop. Streams in Copy are their
// handlers' and end with them.
func (p *Pacer) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	l := p.loop
	p.mu.Unlock()
	var err error
	if l != nil {
		err = l.drain(ctx)
	}
	p.Close()
	return err
}

// Close cuts every handed-over stream at once, stops the loop and refuses
// new streams.
func (p *Pacer) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	l := p.loop
	p.admitWaiting() // refuses every queued stream
	p.mu.Unlock()
	if l != nil {
		l.stop()
	}
}

// Copy sends n bytes from src to w at s's pace, in the caller's goroutine,
// and then releases s. It is the way for connections the loop cannot take
// (TLS, HTTP/2); the ledger is the same. It returns early when ctx ends,
// and with ErrStopped when Stop ends s.
func (s *Stream) Copy(ctx context.Context, w io.Writer, src io.Reader, n int64) (int64, error) {
	defer s.Release()
	p := s.p
	stopc := make(chan struct{})
	p.mu.Lock()
	if !s.stopped {
		s.stopc = stopc
	}
	p.mu.Unlock()
	var t *time.Timer
	var total int64
	for total < n {
		now := p.now()
		k, at, stop := p.plan(s, now, n-total)
		if stop {
			return total, ErrStopped
		}
		if k == 0 {
			d := time.Duration(at - now)
			if t == nil {
				t = time.NewTimer(d)
				defer t.Stop()
			} else {
				t.Reset(d)
			}
			select {
			case <-t.C:
			case <-stopc: // plan says so next
			case <-ctx.Done():
				return total, ctx.Err()
			}
			continue
		}
		m, err := io.CopyN(w, src, k)
		total += m
		p.account(s, p.now(), m)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// streamHeap orders handed streams by due time.
type streamHeap []*handed

func (h streamHeap) Len() int           { return len(h) }
func (h streamHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h streamHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *streamHeap) Push(v any) {
	x := v.(*handed)
	x.idx = len(*h)
	*h = append(*h, x)
}
func (h *streamHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = nil
	x.idx = -1
	*h = old[:len(old)-1]
	return x
}
