// Package pace decides when each stream's next bytes may go out: a burst at
// full speed, then the file's peak rate times a factor, within a limit per
// client (across all its connections) and an uplink budget that admits or
// refuses new streams.
//
// A Pacer keeps the ledger (what each stream reserved and what the free
// budget lends it) and drives the bodies. A stream whose connection is a
// plain TCP socket is handed over after its headers: one goroutine, the
// loop, sends every such stream's next slice with a non-blocking sendfile
// from a file descriptor shared by all streams of the same file, so a
// stream waiting for its next slot costs a small struct, not a parked
// goroutine with its buffers. Any other connection (TLS, HTTP/2, tests'
// recorders) is paced in its handler's goroutine by Copy with the same
// ledger. docs/decisions/0009-central-pacer.md has the measurements.
//
// An admin sees the active streams (Streams), ends one (Stop) and changes
// the budget while streams run (SetLimits).
//
// It does not know files, bitrates or HTTP: callers say how fast a stream
// needs to go and hand it the bytes to send.
package pace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Pacer. The zero value paces with no uplink budget
// and no limit per client.
type Options struct {
	// Uplink is the total budget in bytes per second; 0 is unlimited.
	Uplink int64
	// PerClient caps one client's aggregate rate, in bytes per second,
	// across all its connections; 0 is unlimited.
	PerClient int64
	// Queue makes Admit wait for budget (up to QueueWait) instead of
	// refusing at once.
	Queue bool
	// QueueWait bounds a queued admission; default 30s.
	QueueWait time.Duration
	// RetryAfter is what a refused stream is told; default 10s.
	RetryAfter time.Duration
	// Step is how much media time one paced write carries; default 500ms.
	// Larger steps cost fewer system calls and are as accurate over
	// seconds: a player's buffer holds many steps.
	Step time.Duration
	// Stall cuts a handed-over stream whose client takes no bytes for this
	// long; default 1m.
	Stall time.Duration
}

// Bounds of one write, whatever the rate. The floor makes a 128 kbit/s
// stream write about once a second rather than twice: at 10,000 such
// streams each write's fixed cost (the system call, waking the client)
// is most of the server's CPU (docs/benchmarks.md, pacing cost).
const (
	minStep = 16 << 10
	maxStep = 1 << 20
	// slack lets the loop send, in one wake-up, every stream due within
	// this much of now: fewer timer wake-ups for the same accuracy.
	slack = 20 * time.Millisecond
)

// Stats is a snapshot of a Pacer's counters.
type Stats struct {
	Active    int   // streams admitted and not finished
	Handed    int   // of which the loop drives
	Reserved  int64 // bytes per second reserved by active streams
	Uplink    int64 // the budget, 0 when unlimited
	Sent      int64 // body bytes sent by paced streams, total
	BurstSent int64 // of which during bursts
	Admitted  int64
	Rejected  int64
	Queued    int64
	Stalls    int64 // streams whose client took nothing for longer than their buffer
	Cut       int64 // streams ended by a stall deadline or shutdown
	Stopped   int64 // streams ended by Stop (an admin), not counted in Cut
}

// FullError is Admit's answer when the uplink budget has no room.
type FullError struct {
	Need, Free int64 // bytes per second
	RetryAfter time.Duration
}

func (e *FullError) Error() string {
	return fmt.Sprintf("uplink budget full: the stream needs %s, %s free", bitrate(e.Need), bitrate(e.Free))
}

// ErrClosed is returned by Admit and Hand once the Pacer shuts down.
var ErrClosed = errors.New("pace: shutting down")

// ErrStopped ends a stream that Stop ended: Copy returns it, and a handed
// stream's done is called with it.
var ErrStopped = errors.New("pace: stream stopped")

func bitrate(bytesPerSec int64) string {
	b := float64(bytesPerSec) * 8
	switch {
	case b >= 1e9:
		return fmt.Sprintf("%.1f Gbit/s", b/1e9)
	case b >= 1e6:
		return fmt.Sprintf("%.1f Mbit/s", b/1e6)
	default:
		return fmt.Sprintf("%.0f kbit/s", b/1e3)
	}
}

// Pacer is the ledger and the loop. Use New.
type Pacer struct {
	opts Options
	base time.Time
	tag  string // random, begins every stream ID (see Stop)

	mu      sync.Mutex
	clients map[string]*client
	// The active streams in the order they were admitted (which is
	// their Started order): Streams needs no sort, and a stream joins
	// and leaves with two pointer writes, not a map's hashing.
	first, last *Stream
	seq         uint64 // the last stream ID's number
	active      int
	reserved    int64 // sum of the clients' reservations
	waiting     []*waiter
	closed      bool
	// lending, recomputed when the set of streams changes
	burstRate float64 // bytes/s a bursting stream may add to its own rate; +Inf when unlimited
	headroom  float64 // share of each stream's headroom (factor-1) it gets, 0..1
	bursting  int
	headNeed  float64 // sum of (factor-1)*rate over streams past their burst

	loop   *loop
	files  fileTable
	handed atomic.Int64

	sent, burstSent, admitted, rejected, queued, stalls, cut, stopped atomic.Int64
}

type client struct {
	key   string
	need  int64 // sum of its streams' rates
	n     int   // its streams
	tat   int64 // theoretical arrival time of its next byte (ns since base), for PerClient
	owned int64 // its share of Pacer.reserved
}

type waiter struct {
	a     Admission
	ready chan struct{}
	s     *Stream // set when admitted
	// refused is set when SetLimits turned the queue off: the waiter is
	// told the budget is full rather than that the Pacer closed.
	refused bool
}

// New returns a Pacer. Its loop starts with the first handed stream.
func New(opts Options) *Pacer {
	if opts.QueueWait <= 0 {
		opts.QueueWait = 30 * time.Second
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 10 * time.Second
	}
	if opts.Step <= 0 {
		opts.Step = 500 * time.Millisecond
	}
	if opts.Stall <= 0 {
		opts.Stall = time.Minute
	}
	var tag [4]byte
	rand.Read(tag[:]) // never fails (crypto/rand)
	p := &Pacer{opts: opts, base: time.Now(), tag: hex.EncodeToString(tag[:]), clients: map[string]*client{}}
	p.relend()
	return p
}

// now is the Pacer's clock: nanoseconds since New.
func (p *Pacer) now() int64 { return int64(time.Since(p.base)) }

// Admission describes a stream asking to be admitted.
type Admission struct {
	// Client identifies who asks: a user name or an address. Streams of
	// one client share Options.PerClient.
	Client string
	// Rate is what playback needs, in bytes per second: the file's peak
	// bitrate. It is reserved from the uplink budget.
	Rate int64
	// Factor scales Rate once the burst is over, with headroom lent from
	// the free budget; at least 1.
	Factor float64
	// Burst is how many bytes go at full speed first.
	Burst int64
	// Label says what the stream is, for an admin's list of streams: the
	// item's virtual path ("Music/a.mp3").
	Label string
	// User is the user name behind the stream, "" when unknown (Client
	// may be an address).
	User string
}

// Stream is an admitted stream. Exactly one of Hand, Copy or Release ends
// it.
//
// Every field below p and c is the Pacer's, under its mutex.
type Stream struct {
	p      *Pacer
	c      *client
	rate   float64 // bytes/s reserved
	factor float64
	burst  int64 // burst bytes left
	buffer int64 // ns of media the burst put in the client's buffer
	vt     int64 // earliest time (ns since base) of the next byte
	done   bool
	// stopped: Stop ended it; plan tells the loop or Copy.
	stopped bool

	// What an admin sees (Streams) and what Stop needs.
	id          string
	label, user string
	started     int64         // ns since base
	sent        int64         // body bytes
	prev, next  *Stream       // in Pacer.first's list
	h           *handed       // set when handed to the loop
	stopc       chan struct{} // set by Copy; Stop closes it to end Copy's wait
}

// Admit reserves a's rate from the uplink budget. When the budget has no
// room it returns a *FullError at once, or with Options.Queue waits for
// room up to QueueWait or ctx's end.
func (p *Pacer) Admit(ctx context.Context, a Admission) (*Stream, error) {
	if a.Rate <= 0 {
		return nil, fmt.Errorf("pace: rate %d", a.Rate)
	}
	if a.Factor < 1 {
		a.Factor = 1
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if len(p.waiting) == 0 && p.fits(a.Client, a.Rate) {
		s := p.admitLocked(a)
		p.mu.Unlock()
		return s, nil
	}
	if !p.opts.Queue {
		free := p.opts.Uplink - p.reserved
		p.rejected.Add(1)
		p.mu.Unlock()
		return nil, &FullError{Need: a.Rate, Free: max(free, 0), RetryAfter: p.opts.RetryAfter}
	}
	w := &waiter{a: a, ready: make(chan struct{})}
	p.waiting = append(p.waiting, w)
	p.queued.Add(1)
	p.mu.Unlock()

	t := time.NewTimer(p.opts.QueueWait)
	defer t.Stop()
	select {
	case <-w.ready:
	case <-t.C:
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-w.ready: // admitWaiting closes ready under the lock: no race
		if w.refused {
			p.rejected.Add(1)
			return nil, &FullError{Need: a.Rate, Free: max(p.opts.Uplink-p.reserved, 0), RetryAfter: p.opts.RetryAfter}
		}
		if w.s == nil {
			return nil, ErrClosed
		}
		return w.s, nil
	default:
	}
	for i, x := range p.waiting {
		if x == w {
			p.waiting = append(p.waiting[:i], p.waiting[i+1:]...)
			break
		}
	}
	p.rejected.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, &FullError{Need: a.Rate, Free: max(p.opts.Uplink-p.reserved, 0), RetryAfter: p.opts.RetryAfter}
}

// fits reports whether a stream of rate for key fits the budget.
func (p *Pacer) fits(key string, rate int64) bool {
	if p.opts.Uplink <= 0 {
		return true
	}
	c := p.clients[key]
	var need, owned int64 = rate, 0
	if c != nil {
		need += c.need
		owned = c.owned
	}
	return p.reserved-owned+p.clientShare(need) <= p.opts.Uplink
}

// clientShare is what a client needing need reserves: never more than it
// may use.
func (p *Pacer) clientShare(need int64) int64 {
	if p.opts.PerClient > 0 {
		return min(need, p.opts.PerClient)
	}
	return need
}

func (p *Pacer) admitLocked(a Admission) *Stream {
	c := p.clients[a.Client]
	if c == nil {
		c = &client{key: a.Client}
		p.clients[a.Client] = c
	}
	c.need += a.Rate
	c.n++
	p.reserved -= c.owned
	c.owned = p.clientShare(c.need)
	p.reserved += c.owned
	p.active++
	p.admitted.Add(1)
	now := p.now()
	p.seq++
	var id [32]byte
	s := &Stream{p: p, c: c, rate: float64(a.Rate), factor: a.Factor, burst: a.Burst, vt: now,
		id:    string(strconv.AppendUint(append(append(id[:0], p.tag...), '-'), p.seq, 10)),
		label: a.Label, user: a.User, started: now, prev: p.last}
	if p.last != nil {
		p.last.next = s
	} else {
		p.first = s
	}
	p.last = s
	s.buffer = int64(float64(a.Burst) / s.rate * 1e9)
	if s.burst > 0 {
		p.bursting++
	} else {
		p.headNeed += (s.factor - 1) * s.rate
	}
	p.relend()
	return s
}

// Release ends s: its reservation returns to the budget. It is safe to
// call more than once; Hand and Copy call it when they finish.
func (s *Stream) Release() {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.done {
		return
	}
	s.done = true
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		p.first = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		p.last = s.prev
	}
	s.prev, s.next = nil, nil
	c := s.c
	c.need -= int64(s.rate)
	c.n--
	p.reserved -= c.owned
	c.owned = p.clientShare(c.need)
	p.reserved += c.owned
	if c.n == 0 {
		delete(p.clients, c.key)
	}
	p.active--
	if s.burst > 0 {
		p.bursting--
	} else {
		p.headNeed -= (s.factor - 1) * s.rate
	}
	p.admitWaiting()
	p.relend()
}

// admitWaiting admits queued streams in order while they fit.
func (p *Pacer) admitWaiting() {
	for len(p.waiting) > 0 && (p.closed || p.fits(p.waiting[0].a.Client, p.waiting[0].a.Rate)) {
		w := p.waiting[0]
		p.waiting = p.waiting[1:]
		if !p.closed {
			w.s = p.admitLocked(w.a)
		}
		close(w.ready)
	}
}

// relend shares the free budget: bursting streams get at least half of it
// (all of it that the headroom of the others does not need), and streams
// past their burst share the rest as headroom up to their factor. With no
// budget, bursts are unlimited and every stream gets its full factor.
func (p *Pacer) relend() {
	if p.opts.Uplink <= 0 {
		p.burstRate, p.headroom = math.Inf(1), 1
		return
	}
	free := float64(max(p.opts.Uplink-p.reserved, 0))
	burst := 0.0
	if p.bursting > 0 {
		burst = max(free-p.headNeed, free/2)
		p.burstRate = burst / float64(p.bursting)
	} else {
		p.burstRate = 0
	}
	p.headroom = 1
	if p.headNeed > 0 {
		p.headroom = min(1, (free-burst)/p.headNeed)
	}
}

// plan says how many bytes s may send at now (ns since base), at most
// left; when none, it returns the time to ask again. stop says Stop ended
// s: reading it here, under the lock plan takes anyway, is what keeps Stop
// free for the paced writes.
func (p *Pacer) plan(s *Stream, now, left int64) (n, at int64, stop bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.stopped {
		return 0, 0, true
	}
	at = s.vt
	if lim := p.opts.PerClient; lim > 0 {
		// One step of tolerance: the client's streams may each send a
		// step at once, but their sum keeps to the limit.
		if t := s.c.tat - int64(p.opts.Step); t > at {
			at = t
		}
	}
	if at > now+int64(slack) {
		return 0, at, false
	}
	rate := p.rateLocked(s)
	if math.IsInf(rate, 1) {
		n = maxStep
	} else {
		n = int64(rate * p.opts.Step.Seconds())
	}
	if lim := p.opts.PerClient; lim > 0 {
		n = min(n, int64(float64(lim)*p.opts.Step.Seconds()))
	}
	n = min(max(n, minStep), maxStep, left)
	if s.burst > 0 {
		n = min(n, max(s.burst, minStep))
	}
	return n, 0, false
}

// rateLocked is s's current rate in bytes per second.
func (p *Pacer) rateLocked(s *Stream) float64 {
	if s.burst > 0 {
		return s.rate + p.burstRate
	}
	return s.rate * (1 + (s.factor-1)*p.headroom)
}

// account records that s sent n bytes at now.
func (p *Pacer) account(s *Stream, now, n int64) {
	if n <= 0 {
		return
	}
	p.sent.Add(n)
	p.mu.Lock()
	defer p.mu.Unlock()
	s.sent += n
	rate := p.rateLocked(s)
	// A stream that fell behind (its client or the network was slow) may
	// catch up by at most its buffer's worth, not by everything it
	// missed; under an uplink budget by one step only: a catch-up is
	// sent at full speed and nothing lends it the budget, so on a full
	// link it would take the others' share (bench/pace-share.sh saw
	// 4 MB lumps overflow the link's queue).
	lag := max(s.buffer, int64(p.opts.Step))
	if p.opts.Uplink > 0 {
		lag = int64(p.opts.Step)
	}
	vt := max(s.vt, now-lag)
	if !math.IsInf(rate, 1) {
		vt += int64(float64(n) / rate * 1e9)
	} else {
		vt = now
	}
	s.vt = vt
	if lim := p.opts.PerClient; lim > 0 {
		s.c.tat = max(s.c.tat, now) + int64(float64(n)/float64(lim)*1e9)
	}
	if s.burst > 0 {
		b := min(n, s.burst)
		p.burstSent.Add(b)
		s.burst -= b
		if s.burst == 0 {
			p.bursting--
			p.headNeed += (s.factor - 1) * s.rate
			p.relend()
		}
	}
}

// Stats returns a snapshot of the counters.
func (p *Pacer) Stats() Stats {
	p.mu.Lock()
	st := Stats{Active: p.active, Reserved: p.reserved, Uplink: max(p.opts.Uplink, 0)}
	p.mu.Unlock()
	st.Handed = int(p.handed.Load())
	st.Sent = p.sent.Load()
	st.BurstSent = p.burstSent.Load()
	st.Admitted = p.admitted.Load()
	st.Rejected = p.rejected.Load()
	st.Queued = p.queued.Load()
	st.Stalls = p.stalls.Load()
	st.Cut = p.cut.Load()
	st.Stopped = p.stopped.Load()
	return st
}

// StreamInfo describes an active stream, for an admin's list.
type StreamInfo struct {
	ID     string // unique within the Pacer; see Stop
	Client string // Admission.Client: the key of the per-client limit
	User   string
	Label  string
	Rate   int64 // reserved, bytes per second
	Factor float64
	// Pace is the rate the ledger allows the stream now, in bytes per
	// second: Rate plus what the free budget lends it (burst or
	// headroom); 0 while it bursts with no budget (no limit). What it
	// delivered on average is Sent over the time since Started.
	Pace     int64
	Sent     int64 // body bytes so far
	Started  time.Time
	Bursting bool
	// Handed: the loop drives it; false: its handler does (Copy), or it
	// has not begun its body.
	Handed bool
	// Stopped: Stop ended it and it is on its way out (a stream in Copy
	// leaves once its current write returns).
	Stopped bool
}

// Streams returns the active streams, oldest first. The slice is its only
// allocation, made before it takes the Pacer's lock for one pass over the
// streams, during which no stream plans its next slice: about 0.5 ms at
// 10,000 streams here, against slices of 0.5 s.
func (p *Pacer) Streams() []StreamInfo {
	p.mu.Lock()
	n := p.active
	p.mu.Unlock()
	out := make([]StreamInfo, 0, n+n/8+1) // room for some admitted meanwhile
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := p.first; s != nil; s = s.next {
		pace := p.rateLocked(s)
		if math.IsInf(pace, 1) {
			pace = 0
		}
		out = append(out, StreamInfo{
			ID: s.id, Client: s.c.key, User: s.user, Label: s.label,
			Rate: int64(s.rate), Factor: s.factor, Pace: int64(pace), Sent: s.sent,
			Started:  p.base.Add(time.Duration(s.started)),
			Bursting: s.burst > 0, Handed: s.h != nil, Stopped: s.stopped,
		})
	}
	return out
}

// Stop ends the active stream id, as an admin's stop button does, and
// reports whether there was one (false too when it is already stopping).
// The stream's reservation returns as it ends, at once for a handed
// stream: the loop closes its connection as a stall cut does, and its done
// sees ErrStopped. A stream paced by Copy returns ErrStopped from Copy
// within one slice's write (at once when it waits for its next slice), so
// its handler ends and net/http closes the connection (the body is short
// of its Content-Length). A stream admitted whose body has not begun ends
// when it begins.
//
// An ID is the Pacer's random tag and the stream's number in admission
// order ("9f2c61d0-42"): never reused by a Pacer, and unknown to another
// (a node behind the same load balancer, or this one after a restart), so
// a stale stop button ends nothing rather than a stranger's stream. Stop
// looks for it among the active streams under the Pacer's lock, about
// 5 µs per 1,000 streams: an admin's click, not worth an index that every
// admission would pay for.
func (p *Pacer) Stop(id string) bool {
	p.mu.Lock()
	s := p.first
	for s != nil && s.id != id {
		s = s.next
	}
	if s == nil || s.stopped {
		p.mu.Unlock()
		return false
	}
	s.stopped = true
	if s.stopc != nil {
		close(s.stopc)
	}
	x, l := s.h, p.loop
	p.mu.Unlock()
	p.stopped.Add(1)
	if x != nil {
		l.stopStream(x)
	}
	return true
}

// SetLimits changes Options.Uplink, PerClient and Queue while streams run
// (the admin page); 0 is unlimited as in Options. Running streams keep
// their reservations and nothing is cut: admission uses the new budget
// from then on, and what is lent (bursts, headroom) is recomputed at
// once. An uplink below what is reserved lends nothing (every stream runs
// at its reserved rate, bursts included) and refuses or queues every new
// stream until enough have ended. A raised uplink admits queued streams
// that now fit, in order. PerClient applies to every client's next slice,
// running streams included, and each client's reservation becomes what it
// may now use (min(its streams' rates, PerClient)), which may also leave
// the reservations above the uplink. Queue turned off refuses the streams
// still waiting (those that fit are admitted first).
func (p *Pacer) SetLimits(uplink, perClient int64, queue bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opts.Uplink, p.opts.PerClient, p.opts.Queue = max(uplink, 0), max(perClient, 0), queue
	p.reserved = 0
	for _, c := range p.clients {
		c.owned = p.clientShare(c.need)
		p.reserved += c.owned
	}
	p.admitWaiting()
	if !queue {
		for _, w := range p.waiting {
			w.refused = true
			close(w.ready)
		}
		clear(p.waiting)
		p.waiting = p.waiting[:0]
	}
	p.relend()
}
