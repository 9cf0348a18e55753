// Package cluster is what one MuStServ node knows of itself and of the
// other nodes behind the same load balancer: whether it is ready for new
// streams (/readyz: started, index loaded, not draining, uplink budget not
// exhausted), and its peers' free uplink, read from their /metrics, so that
// a stream this node's budget cannot take is sent (307) to the peer with
// the most room (placement).
//
// There is no membership protocol and no shared state: nodes share the
// storage and the signing key, and each is told its peers' URLs. A peer
// that does not answer is left out until it does.
package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Why a node is not ready; /readyz shows the message.
var (
	ErrStarting   = errors.New("starting")
	ErrDraining   = errors.New("draining: finishing running streams, taking no new ones")
	ErrStopping   = errors.New("shutting down: finishing running streams, taking no new ones")
	ErrIndexing   = errors.New("the index is being built: first scan not finished")
	ErrUplinkFull = errors.New("uplink budget exhausted")
)

// minStream is the smallest stream (bits/s) an uplink budget must still
// have room for to be not exhausted: a low-bitrate audio stream.
const minStream = 64_000

// Uplink is a node's uplink budget and what its streams reserve, in
// bits/s; Budget 0 is unlimited.
type Uplink struct {
	Budget, Reserved int64
	Active           int // streams holding a reservation
}

// Free is the budget not reserved; -1 when unlimited.
func (u Uplink) Free() int64 {
	if u.Budget <= 0 {
		return -1
	}
	return max(u.Budget-u.Reserved, 0)
}

// Exhausted reports whether the free budget is below what the next stream
// is likely to need: the mean reservation of the running streams, and at
// least minStream. An unlimited budget is never exhausted.
func (u Uplink) Exhausted() bool {
	if u.Budget <= 0 {
		return false
	}
	need := int64(minStream)
	if u.Active > 0 {
		need = max(need, u.Reserved/int64(u.Active))
	}
	return u.Free() < need
}

// State is this node's readiness. The zero value is starting, with no
// index or budget to wait for.
type State struct {
	started  atomic.Bool
	draining atomic.Bool
	stopping atomic.Bool
	indexed  atomic.Bool
	// Indexed reports whether the index has what to serve (called until
	// it first says so); nil: always.
	Indexed func() bool
	// Uplink returns the budget and its use; nil: unlimited.
	Uplink func() Uplink
}

// Start marks the node as serving.
func (s *State) Start() { s.started.Store(true) }

// SetDraining turns an admin's draining on or off: while on, /readyz
// answers 503 so that balancers send new work elsewhere, and running
// streams go on.
func (s *State) SetDraining(on bool) { s.draining.Store(on) }

// Stop starts the drain of a shutdown (SIGTERM): like draining, but for
// good — SetDraining(false) does not undo it.
func (s *State) Stop() { s.stopping.Store(true) }

// Draining reports whether the node drains, for an admin or a shutdown.
func (s *State) Draining() bool { return s.draining.Load() || s.stopping.Load() }

// Ready returns nil when the node takes new streams, else why not.
func (s *State) Ready() error {
	if err := s.Open(); err != nil {
		return err
	}
	if s.Uplink != nil && s.Uplink().Exhausted() {
		return ErrUplinkFull
	}
	return nil
}

// Serving returns nil once the node serves pages: started, with its index
// built. Draining and a full uplink do not stop pages, the API and
// playlists (a balancer's pages backend checks this).
func (s *State) Serving() error {
	if !s.started.Load() {
		return ErrStarting
	}
	return s.indexedYet()
}

// indexedYet asks Indexed until it first says yes.
func (s *State) indexedYet() error {
	if s.indexed.Load() {
		return nil
	}
	if s.Indexed != nil && !s.Indexed() {
		return ErrIndexing
	}
	s.indexed.Store(true)
	return nil
}

// Open returns nil when the node takes new streams that fit its uplink
// budget: started, index built, not draining. It is Ready without the
// budget's guess at the next stream: what peers place streams by, each
// knowing the stream's rate.
func (s *State) Open() error {
	switch {
	case !s.started.Load():
		return ErrStarting
	case s.stopping.Load():
		return ErrStopping
	case s.draining.Load():
		return ErrDraining
	}
	return s.indexedYet()
}

// Peer is what a node last read of a peer's /metrics.
type Peer struct {
	URL    string
	Ready  bool // open for streams that fit its budget (State.Open)
	Uplink Uplink
	Seen   time.Time // of the last good read; zero: never
	Err    string    // of the last read, "" when it succeeded
	// lent is what this node sent the peer lately, counted as reserved
	// there so that the streams it redirects spread: until a read that
	// began loanArrive after it (the player has arrived and is in that
	// read), at most lentFor.
	lent []loan
}

// loanArrive is how long a redirected player is given to reach the peer.
const loanArrive = 500 * time.Millisecond

// loan is one stream sent to a peer.
type loan struct {
	at   time.Time
	need int64
}

// lentOn sums p's loans younger than d at now, dropping the others.
func (p *Peer) lentOn(now time.Time, d time.Duration) (need int64, n int) {
	keep := p.lent[:0]
	for _, l := range p.lent {
		if now.Sub(l.at) < d {
			keep = append(keep, l)
			need += l.need
		}
	}
	p.lent = keep
	return need, len(keep)
}

// maxLoans bounds a peer's loans: past it, the oldest is forgotten.
const maxLoans = 10_000

// Options configure a Cluster.
type Options struct {
	Peers []string // base URLs
	Poll  time.Duration
	// Token returns the bearer token a peer's /metrics wants; nil sends
	// none (peers without accounts).
	Token  func(now time.Time) (string, error)
	Client *http.Client // nil: http.DefaultTransport with a Poll timeout
	Logger *slog.Logger
}

// Cluster follows the peers' free uplink and picks where a stream goes.
type Cluster struct {
	opts       Options
	mu         sync.Mutex
	peers      []Peer
	redirected atomic.Int64
}

// New returns a Cluster of the peers in o; Run reads them.
func New(o Options) *Cluster {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Poll, CheckRedirect: noRedirects}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{opts: o}
	for _, u := range o.Peers {
		c.peers = append(c.peers, Peer{URL: strings.TrimSuffix(u, "/")})
	}
	return c
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Run reads every peer's /metrics each Poll until ctx ends.
func (c *Cluster) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Poll)
	defer t.Stop()
	for {
		c.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll reads every peer's /metrics once, in parallel, and returns when all
// have answered or failed.
func (c *Cluster) Poll(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range c.peers {
		wg.Go(func() {
			sent := time.Now()
			u, ready, err := c.read(ctx, c.peers[i].URL)
			c.mu.Lock()
			defer c.mu.Unlock()
			p := &c.peers[i]
			if err != nil {
				if p.Err == "" {
					c.opts.Logger.Warn("peer not readable: no streams are placed there", "peer", p.URL, "err", err)
				}
				p.Err, p.Ready = err.Error(), false
				return
			}
			if p.Err != "" {
				c.opts.Logger.Info("peer readable again", "peer", p.URL)
			}
			p.Uplink, p.Ready, p.Seen, p.Err = u, ready, time.Now(), ""
			// Streams sent well before the read are in what it says;
			// the last moment's players may not have arrived yet.
			keep := p.lent[:0]
			for _, l := range p.lent {
				if l.at.After(sent.Add(-loanArrive)) {
					keep = append(keep, l)
				}
			}
			p.lent = keep
		})
	}
	wg.Wait()
}

// metricsLimit bounds a peer's /metrics answer.
const metricsLimit = 1 << 20

// read fetches and parses one peer's /metrics.
func (c *Cluster) read(ctx context.Context, base string) (Uplink, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Poll)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return Uplink{}, false, err
	}
	if c.opts.Token != nil {
		tok, err := c.opts.Token(time.Now())
		if err != nil {
			return Uplink{}, false, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		return Uplink{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, metricsLimit))
		return Uplink{}, false, fmt.Errorf("/metrics: %s (do the nodes share the signing key?)", resp.Status)
	}
	return ParseMetrics(io.LimitReader(resp.Body, metricsLimit))
}

// The /metrics gauges a peer is read by.
const (
	MetricBudget   = "mustserv_uplink_budget_bits_per_second"
	MetricReserved = "mustserv_uplink_reserved_bits_per_second"
	MetricActive   = "mustserv_streams_active"
	MetricOpen     = "mustserv_open"
)

// maxMetric bounds the values ParseMetrics accepts (bit/s and counts).
const maxMetric = 1 << 62

// ParseMetrics reads a node's uplink and whether it is open for new
// streams from its /metrics text. Values must be finite, not negative
// and below 2^62: a peer's nonsense must not look like an unlimited
// budget.
func ParseMetrics(r io.Reader) (Uplink, bool, error) {
	want := map[string]float64{MetricBudget: -1, MetricReserved: -1, MetricActive: -1, MetricOpen: -1}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if _, known := want[name]; !ok || !known {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil || math.IsNaN(v) || v < 0 || v > maxMetric {
			return Uplink{}, false, fmt.Errorf("/metrics: %s: bad value %q", name, val)
		}
		want[name] = v
	}
	if err := sc.Err(); err != nil {
		return Uplink{}, false, fmt.Errorf("/metrics: %w", err)
	}
	for name, v := range want {
		if v < 0 {
			return Uplink{}, false, fmt.Errorf("/metrics has no %s: not a MuStServ node", name)
		}
	}
	u := Uplink{Budget: int64(want[MetricBudget]), Reserved: int64(want[MetricReserved]), Active: int(want[MetricActive])}
	return u, want[MetricOpen] == 1, nil
}

// Peers returns what was last read of each peer.
func (c *Cluster) Peers() []Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	out := make([]Peer, len(c.peers))
	for i := range c.peers {
		need, n := c.peers[i].lentOn(now, c.lentFor())
		out[i] = c.peers[i]
		out[i].lent = nil
		out[i].Uplink.Reserved += need
		out[i].Uplink.Active += n
	}
	return out
}

// lentFor is how long a stream sent to a peer counts there: two polls,
// at least 2 s.
func (c *Cluster) lentFor() time.Duration { return max(2*c.opts.Poll, 2*time.Second) }

// Redirected is how many streams Pick placed on a peer.
func (c *Cluster) Redirected() int64 { return c.redirected.Load() }

// Pick returns the URL of an open peer read within the last three polls
// whose free uplink fits need (bits/s) and that accept (if not nil) takes,
// and counts need as reserved there for a while (lentFor); ok is false
// when no peer fits. Of two peers that fit, the one with more room (a coin
// between equals); of more, the roomier of two taken at random ("two
// choices"): nodes that know nothing of each other's picks then do not
// all send a surge to the same peer. A peer without a budget fits
// everything, ranked above any finite room, fewest streams first.
func (c *Cluster) Pick(need int64, now time.Time, accept func(url string) bool) (url string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	type fit struct {
		i    int
		free int64
	}
	var fits []fit
	for i := range c.peers {
		p := &c.peers[i]
		if !p.Ready || p.Seen.IsZero() || now.Sub(p.Seen) > 3*c.opts.Poll || (accept != nil && !accept(p.URL)) {
			continue
		}
		lent, n := p.lentOn(now, c.lentFor())
		u := p.Uplink
		u.Reserved += lent
		u.Active += n
		free := u.Free()
		if free < 0 {
			free = 1<<62 - int64(u.Active)
		} else if free < need {
			continue
		}
		fits = append(fits, fit{i, free})
	}
	if len(fits) == 0 {
		return "", false
	}
	if len(fits) > 2 {
		a := rand.IntN(len(fits))
		b := rand.IntN(len(fits) - 1)
		if b >= a {
			b++
		}
		fits = []fit{fits[a], fits[b]}
	}
	best := fits[0]
	if len(fits) == 2 && (fits[1].free > best.free || fits[1].free == best.free && rand.IntN(2) == 1) {
		best = fits[1] // roomier, or as roomy: a coin decides
	}
	p := &c.peers[best.i]
	if len(p.lent) >= maxLoans {
		p.lent = p.lent[1:]
	}
	p.lent = append(p.lent, loan{at: now, need: need})
	c.redirected.Add(1)
	return p.URL, true
}
