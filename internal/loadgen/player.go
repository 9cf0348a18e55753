package loadgen

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// userAgent is sent unless Config.Headers sets one.
const userAgent = "mustload (player simulator)"

// player is one simulated player. Each has its own client, so its
// connections are its own, as separate players' are.
type player struct {
	id     int
	target Target
	cfg    *Config
	client *http.Client
	rng    *rand.Rand
	buf    []byte // one read's worth, while the player runs
}

func newPlayer(id int, target Target, cfg *Config, local net.Addr, dial dialFunc) *player {
	if dial == nil {
		d := &net.Dialer{LocalAddr: local, KeepAlive: -1}
		dial = d.DialContext
	}
	tr := &http.Transport{
		DialContext: dial,
		// One connection per request, as ffmpeg and mpv open one per
		// seek; no proxy from the environment, no gzip (players ask for
		// the bytes as they are).
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		TLSHandshakeTimeout:    10 * time.Second,
	}
	return &player{
		id:     id,
		target: target,
		cfg:    cfg,
		client: &http.Client{Transport: tr},
		rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(id))),
	}
}

// run plays until the watch time is over, the file ends, a request fails
// or ctx ends.
func (pl *player) run(ctx context.Context, begin time.Time) Player {
	res := Player{
		ID: pl.id, URL: pl.target.URL, Bitrate: pl.target.Bitrate, Status: StatusOK,
		Start: round(time.Since(begin).Seconds(), 3), SeekMS: []float64{}, Trace: []int64{},
	}
	pl.buf = make([]byte, readSize)
	defer func() { pl.buf = nil }()
	cfg := pl.cfg
	watch := cfg.WatchMin + time.Duration(pl.rng.Int64N(int64(cfg.WatchMax-cfg.WatchMin)+1))
	var played, stalled time.Duration
	var offset int64
	size := int64(-1)
	for seeks := 0; ; seeks++ {
		seekAt := time.Duration(-1)
		if cfg.SeekEvery > 0 && seeks < maxSeeks {
			seekAt = time.Duration(pl.rng.ExpFloat64() * float64(cfg.SeekEvery))
		}
		f := pl.fetch(ctx, offset, watch-played, seekAt, seeks == 0)
		res.Bytes += f.bytes
		if f.http != 0 { // a seek cut short by the run's end got no answer
			res.HTTP = f.http
		}
		if f.retryAfter > 0 {
			res.RetryAfter = f.retryAfter
		}
		res.Stalls += f.out.Stalls
		stalled += f.out.Stalled
		played += f.out.Played
		if seeks == 0 {
			size = f.size
			if f.trace != nil {
				res.Trace = f.trace
			}
			res.RateBPS = f.rate
			if f.out.Started {
				ms := millis(f.waited + f.out.Startup)
				res.StartupMS = &ms
			}
		} else if f.out.Started {
			res.SeekMS = append(res.SeekMS, millis(f.waited+f.out.Startup))
		}
		if f.status != StatusOK {
			res.Status, res.Error, res.End = f.status, f.err, EndError
			break
		}
		if !f.seek {
			res.End = f.end
			break
		}
		res.Seeks++
		offset = pl.rng.Int64N(size)
	}
	res.WatchedSeconds = round(played.Seconds(), 3)
	res.StallSeconds = round(stalled.Seconds(), 3)
	return res
}

// fetched is what one request (with its retries) gave.
type fetched struct {
	status     string
	err        string
	http       int
	retryAfter float64
	waited     time.Duration // from the first attempt to the request answered
	size       int64         // of the file, -1 if the response does not say

	out   outcome
	end   string
	seek  bool // stopped at the seek point
	bytes int64
	trace []int64
	rate  *float64
}

// fetch requests the file from offset and plays it until watchLeft of
// media was played, or seekAt if the file's size allows seeking (seekAt <
// 0: no seek), or the file ends. first keeps the delivery trace and rate.
func (pl *player) fetch(ctx context.Context, offset int64, watchLeft, seekAt time.Duration, first bool) fetched {
	f := fetched{size: -1}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, pl.target.URL, nil)
	if err != nil {
		f.status, f.err = StatusFailed, err.Error()
		return f
	}
	req.Header.Set("User-Agent", userAgent)
	for k, v := range pl.cfg.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")

	firstTry := time.Now()
	var resp *http.Response
	var sent time.Time
	for try := 0; ; try++ {
		sent = time.Now()
		resp, err = pl.client.Do(req)
		if err != nil {
			if ctx.Err() != nil && !first {
				// The run ended while a seek waited for its answer.
				f.status, f.end = StatusOK, EndCancel
				return f
			}
			f.status, f.err = StatusFailed, err.Error()
			return f
		}
		f.http = resp.StatusCode
		if resp.StatusCode != http.StatusServiceUnavailable {
			break
		}
		resp.Body.Close()
		retry, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		if ok {
			f.retryAfter = round(retry.Seconds(), 3)
		} else {
			retry = time.Second
		}
		f.status, f.err = StatusRejected, "HTTP "+resp.Status
		if !pl.cfg.RetryRejected || try == maxRetries || !waitFor(ctx, retry) {
			return f
		}
	}
	defer resp.Body.Close()
	f.waited = sent.Sub(firstTry)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		f.status, f.err = StatusFailed, "HTTP "+resp.Status
		return f
	}
	f.status, f.err = StatusOK, ""
	f.size = fileSize(resp)
	limit := watchLeft
	if seekAt >= 0 && seekAt < watchLeft && f.size > 0 {
		limit, f.seek = seekAt, true
	}
	pl.play(ctx, rctx, cancel, resp.Body, sent, limit, first, &f)
	if f.end != EndWatch {
		f.seek = false
	}
	return f
}

// play reads body until playback reaches limit, the body ends or fails,
// or ctx ends, and fills in f's outcome, end, bytes and (if first) trace
// and rate. rctx is the request's context; cancel ends the request.
func (pl *player) play(ctx, rctx context.Context, cancel context.CancelFunc, body io.Reader, sent time.Time, limit time.Duration, first bool, f *fetched) {
	cfg := pl.cfg
	p := playback{startup: cfg.Startup, rebuffer: cfg.Rebuffer, limit: limit}
	// The limit may come while a read waits for data that does not come:
	// a timer then ends the request, as the player would close it.
	var reached atomic.Bool
	var limitTimer, pause *time.Timer
	defer func() {
		if limitTimer != nil {
			limitTimer.Stop()
		}
		if pause != nil {
			pause.Stop()
		}
	}()
	var rateBase int64
	var stop time.Duration
	for {
		n, err := body.Read(pl.buf)
		t := time.Since(sent)
		if n > 0 {
			f.bytes += int64(n)
			if first {
				if b := int(t / time.Second); b < maxTrace {
					for len(f.trace) <= b {
						f.trace = append(f.trace, 0)
					}
					f.trace[b] += int64(n)
				}
				if t <= cfg.RateFrom {
					rateBase = f.bytes
				}
			}
			p.receive(t, mediaTime(f.bytes, pl.target.Bitrate))
		}
		switch {
		case p.done:
			f.end = EndWatch
		case errors.Is(err, io.EOF):
			p.end(t)
			f.end = EndEOF
		case err != nil:
			p.stop(t)
			switch {
			case reached.Load() || p.done:
				f.end = EndWatch
			case ctx.Err() != nil:
				f.end = EndCancel
			default:
				f.end = EndError
				f.status, f.err = StatusFailed, err.Error()
			}
		}
		if f.end != "" {
			stop = t
			break
		}
		if limitTimer == nil {
			if at, ok := p.limitAt(); ok {
				limitTimer = time.AfterFunc(at-time.Since(sent), func() {
					reached.Store(true)
					cancel()
				})
			}
		}
		if d := p.excess(cfg.MaxBuffer); d > 0 {
			// A browser's player stops reading while its buffer is full;
			// the server then waits on a full TCP window.
			if pause == nil {
				pause = time.NewTimer(d)
			} else {
				pause.Reset(d)
			}
			select {
			case <-pause.C:
			case <-rctx.Done():
			}
		}
	}
	f.out = outcomeOf(&p, 0, stop)
	if first && stop >= cfg.RateFrom+time.Second {
		r := round(float64(f.bytes-rateBase)*8/(stop-cfg.RateFrom).Seconds(), 0)
		f.rate = &r
	}
}

// fileSize returns the size of the whole file from a 206's Content-Range
// or a 200's Content-Length, or -1.
func fileSize(resp *http.Response) int64 {
	if resp.StatusCode == http.StatusOK {
		return resp.ContentLength
	}
	// Content-Range: bytes 100-199/1000 (RFC 9110, section 14.4)
	cr := resp.Header.Get("Content-Range")
	_, total, ok := strings.Cut(cr, "/")
	if !ok || !strings.HasPrefix(cr, "bytes ") {
		return -1
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// retryAfter parses a Retry-After value, delay-seconds or an HTTP-date
// (RFC 9110, section 10.2.3), as a delay from now.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, 86400)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// waitFor waits d, and reports false if ctx ended first.
func waitFor(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
