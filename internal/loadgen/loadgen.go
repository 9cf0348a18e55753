// Package loadgen simulates media players against an HTTP server, for
// benchmarks of bitrate pacing: each player sends open-ended Range
// requests, reads the body as a player does, keeps a model of its
// playback buffer (startup, stalls, rebuffering, an optional maximum
// buffer), seeks at random, leaves after its watch time, and reports what
// it experienced and the rate it was delivered. Run runs thousands of
// players in one process, bounded by a timeout. Players follow redirects,
// may resume a body cut short where it stopped (Config.Resume), and may
// check every byte they receive (Config.Verify).
//
// It does not decode media: the bitrate of each URL is given, and bytes
// convert to media time at that constant rate, so a variable-bitrate file
// is modelled as constant. It does not parse playlists or adaptive
// streams (HLS, DASH), keep connections alive, or pace its own requests
// beyond the join interval.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Target is a URL and the bitrate of the media it serves, in bits/s.
type Target struct {
	URL     string
	Bitrate int64
}

// Config describes a run. Its zero value, given URLs, is one player
// watching 30 s.
type Config struct {
	URLs      []Target      // players take them in turn
	Players   int           // default 1
	Join      time.Duration // between player starts; 0 starts all at once
	WatchMin  time.Duration // playback time of each player, uniform in [WatchMin, WatchMax]; default 30 s
	WatchMax  time.Duration // default WatchMin
	SeekEvery time.Duration // mean playback time between seeks (exponential); 0: no seeks
	Startup   time.Duration // media buffered before playback starts; default 2 s
	Rebuffer  time.Duration // media buffered before playback resumes after a stall; default 1 s
	MaxBuffer time.Duration // reading stops while this much media is buffered; 0: unlimited
	RateFrom  time.Duration // rate_bps counts bytes from this long after the first request; default 10 s

	// RetryRejected retries a request rejected with 503 after its
	// Retry-After (1 s if absent), up to maxRetries times.
	RetryRejected bool
	Seed          int64 // watch times, seek times and offsets derive from it
	// Timeout caps the whole run; players still running are stopped.
	// Default: the last player's start + 2 × WatchMax + 30 s.
	Timeout time.Duration
	Headers map[string]string // sent with every request ("Host" sets the host)
	// LocalAddr is the source address of the players' connections: an
	// IP, or an IPv4 prefix such as 127.0.0.0/24 whose host addresses
	// players take in turn (each source address has its own ports).
	LocalAddr string

	// Resume is how many times in all each player re-requests the file
	// from where it stopped (Range: bytes=NEXT-), as VLC, mpv and browsers
	// do: at once after a body cut short (a transport error, or fewer
	// bytes than its Content-Length or Content-Range promised), and after
	// a back-off of 100 ms, doubling up to 1 s, after a request that
	// failed to connect or got a 502, 503 or 504 (a 503 is RetryRejected's
	// if that is set). Playback carries on across a resume: the time
	// without bytes drains the buffer. A resume answered with another
	// version of the file (another ETag or Last-Modified, a 200, or a
	// Content-Range that starts elsewhere) fails the player: bytes of two
	// versions are never spliced. 0: a cut body or a failed request fails
	// the player.
	Resume int
	// Verify, if set, is called with every chunk of body bytes a player
	// receives, at once, with the player's URL (not a redirect's) and the
	// chunk's offset in the file. An error fails the player with "wrong
	// bytes: ...". It is called from every player's goroutine at once,
	// so it must be safe for concurrent use, and it must not keep p,
	// whose array the next read reuses.
	Verify func(url string, offset int64, p []byte) error
}

// Limits of a run that keep each loop and each player's memory bounded.
const (
	maxPlayers   = 100_000
	maxBitrate   = 1_000_000_000 // bits/s; keeps mediaTime from overflowing
	maxSeeks     = 1000          // per player
	maxRetries   = 10            // per request, with RetryRejected
	maxResumes   = 1000          // per player
	maxRedirects = 5             // per request
	maxTrace     = 600           // seconds of delivery trace per player
	readSize     = 32 << 10
)

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if len(c.URLs) == 0 {
		return c, errors.New("no URL")
	}
	for _, t := range c.URLs {
		if t.URL == "" {
			return c, errors.New("empty URL")
		}
		if t.Bitrate <= 0 || t.Bitrate > maxBitrate {
			return c, fmt.Errorf("%s: bitrate %d bit/s is outside 1..%d", t.URL, t.Bitrate, maxBitrate)
		}
	}
	if c.Players == 0 {
		c.Players = 1
	}
	if c.Players < 0 || c.Players > maxPlayers {
		return c, fmt.Errorf("players %d is outside 1..%d", c.Players, maxPlayers)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"join", c.Join}, {"watch", c.WatchMin}, {"watch", c.WatchMax}, {"seek interval", c.SeekEvery},
		{"startup", c.Startup}, {"rebuffer", c.Rebuffer}, {"max buffer", c.MaxBuffer},
		{"rate start", c.RateFrom}, {"timeout", c.Timeout},
	} {
		if d.v < 0 {
			return c, fmt.Errorf("negative %s %v", d.name, d.v)
		}
	}
	if c.Resume < 0 || c.Resume > maxResumes {
		return c, fmt.Errorf("resume %d is outside 0..%d", c.Resume, maxResumes)
	}
	if c.WatchMin == 0 {
		c.WatchMin = 30 * time.Second
	}
	c.WatchMax = max(c.WatchMax, c.WatchMin)
	if c.Startup == 0 {
		c.Startup = 2 * time.Second
	}
	if c.Rebuffer == 0 {
		c.Rebuffer = time.Second
	}
	if c.MaxBuffer > 0 && c.MaxBuffer < max(c.Startup, c.Rebuffer) {
		// A player that stopped reading before it could start would
		// never start.
		return c, fmt.Errorf("max buffer %v is below the startup or rebuffer threshold", c.MaxBuffer)
	}
	if c.RateFrom == 0 {
		c.RateFrom = 10 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = time.Duration(c.Players-1)*c.Join + 2*c.WatchMax + 30*time.Second
	}
	if _, err := localAddrs(c.LocalAddr); err != nil {
		return c, err
	}
	return c, nil
}

// localAddrs parses Config.LocalAddr: nil for none, one address, or the
// host addresses of an IPv4 prefix (all of a /31 or /32).
func localAddrs(s string) (func(i int) net.Addr, error) {
	if s == "" {
		return nil, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		tcp := net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
		return func(int) net.Addr { return tcp }, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return nil, fmt.Errorf("local address %q is neither an IP nor an IPv4 prefix", s)
	}
	p = p.Masked()
	b := p.Addr().As4()
	first := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := uint32(1) << (32 - p.Bits())
	if n > 2 {
		first, n = first+1, n-2 // not the network and broadcast addresses
	}
	return func(i int) net.Addr {
		a := first + uint32(i)%n
		ip := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}, nil
}

// dialFunc opens a player's connection; tests replace the network.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Run runs the players cfg describes and reports on each. It returns an
// error only for an invalid cfg: players that fail are in the report. A
// cancelled ctx, or the Timeout, stops the players still running; the
// report then holds what they did until then.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	return run(ctx, cfg, nil)
}

func run(ctx context.Context, cfg Config, dial dialFunc) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	laddr, _ := localAddrs(cfg.LocalAddr)
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	begin := time.Now()
	players := make([]Player, cfg.Players)
	var wg sync.WaitGroup
	var join *time.Timer
	for i := range players {
		if i > 0 && cfg.Join > 0 {
			// Each start is Join after the previous one was due, so a
			// slow start does not delay the rest.
			wait := time.Until(begin.Add(time.Duration(i) * cfg.Join))
			if join == nil {
				join = time.NewTimer(wait)
			} else {
				join.Reset(wait)
			}
			select {
			case <-join.C:
			case <-ctx.Done():
			}
		}
		target := cfg.URLs[i%len(cfg.URLs)]
		if ctx.Err() != nil {
			players[i] = Player{ID: i, URL: target.URL, Bitrate: target.Bitrate, Status: StatusFailed,
				Error: "not started: " + context.Cause(ctx).Error(), End: EndCancel}
			continue
		}
		var local net.Addr
		if laddr != nil {
			local = laddr(i)
		}
		p := newPlayer(i, target, &cfg, local, dial)
		wg.Go(func() { players[i] = p.run(ctx, begin) })
	}
	wg.Wait()
	if join != nil {
		join.Stop()
	}
	rep := &Report{Players: players}
	rep.Summary = summarize(players, time.Since(begin))
	return rep, nil
}
