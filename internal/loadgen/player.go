package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
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

	// Counted in the player's goroutine: the client calls checkRedirect
	// from Do.
	resumes   int
	redirects int
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
	pl := &player{
		id:     id,
		target: target,
		cfg:    cfg,
		rng:    rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(id))),
	}
	pl.client = &http.Client{Transport: tr, CheckRedirect: pl.checkRedirect}
	return pl
}

// errRedirects ends a request redirected more than maxRedirects times.
var errRedirects = fmt.Errorf("stopped after %d redirects", maxRedirects)

// checkRedirect follows up to maxRedirects redirects per request. Go's
// client sends the request's headers again, Range and If-Range included,
// to any host (it drops only credentials and cookies on the way to
// another one); the player's next request goes to its own URL again, as
// a browser's does.
func (pl *player) checkRedirect(_ *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects {
		return errRedirects
	}
	pl.redirects++
	return nil
}

// resume takes one of the player's resumes, and reports false if none
// is left.
func (pl *player) resume() bool {
	if pl.resumes >= pl.cfg.Resume {
		return false
	}
	pl.resumes++
	return true
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
			res.WrongBytes = f.wrongBytes
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
	res.Resumes, res.Redirects = pl.resumes, pl.redirects
	return res
}

// fetched is what one stretch of playback gave: the request at the start
// or after a seek, with its retries and the resumes that continued it.
type fetched struct {
	status     string
	err        string
	wrongBytes bool // Verify failed
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

// Back-off before retrying a request that failed to connect or got a
// 502, 503 or 504: doubling from the first, capped. A body cut short is
// resumed at once.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = time.Second
)

// fetch requests the file from offset and plays it until watchLeft of
// media was played, or seekAt if the file's size allows seeking (seekAt <
// 0: no seek), or the file ends. first keeps the delivery trace and rate.
// With Config.Resume, a body cut short or a failed request is requested
// again from the next byte wanted, and playback carries on.
func (pl *player) fetch(ctx context.Context, offset int64, watchLeft, seekAt time.Duration, first bool) fetched {
	f := fetched{size: -1}
	// sctx ends with ctx, or when playback reaches its limit while the
	// player waits for bytes: the player then closes the connection.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var s *stream // from the first 200 or 206 on
	defer func() {
		if s != nil {
			s.stopTimers()
		}
	}()
	next := offset
	firstTry := time.Now()
	// wait is before the next attempt; f.status and f.err meanwhile say
	// why it is needed, and stand if no attempt is left.
	var wait, backoff time.Duration
	rejections := 0 // 503s retried with RetryRejected since the last answer
	retry := func() bool {
		if !pl.resume() {
			return false
		}
		backoff = min(max(2*backoff, firstBackoff), maxBackoff)
		wait = backoff
		return true
	}
	// failed sets the failure that stands if no retry follows.
	failed := func(status, msg string) {
		if s != nil {
			msg = fmt.Sprintf("resume at byte %d: %s", next, msg)
		}
		f.status, f.err = status, msg
	}
	// Each turn takes a resume or a RetryRejected retry, or ends the
	// loop: at most (Resume+1) x (maxRetries+1) turns.
attempts:
	for {
		if wait > 0 && !waitFor(sctx, wait) {
			interrupted(s, &f, first, "")
			break
		}
		wait = 0
		ifRange := ""
		if s != nil {
			ifRange = s.ver.ifRange()
		}
		req, err := pl.newRequest(sctx, next, ifRange)
		if err != nil {
			failed(StatusFailed, err.Error())
			break
		}
		sent := time.Now()
		resp, err := pl.client.Do(req)
		if err != nil {
			// resp, if any, is a redirect refused by checkRedirect: its
			// body is closed.
			switch {
			case sctx.Err() != nil:
				interrupted(s, &f, first, err.Error())
				break attempts
			case transient(err):
				failed(StatusFailed, err.Error())
				if retry() {
					continue
				}
				f.err = pl.noResumeLeft(f.err)
			default:
				failed(StatusFailed, err.Error())
			}
			break
		}
		f.http = resp.StatusCode
		switch resp.StatusCode {
		case http.StatusOK, http.StatusPartialContent:
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
			resp.Body.Close()
			status := StatusFailed
			if resp.StatusCode == http.StatusServiceUnavailable {
				status = StatusRejected
			}
			failed(status, "HTTP "+resp.Status)
			if resp.StatusCode != http.StatusServiceUnavailable {
				if retry() {
					continue
				}
				f.err = pl.noResumeLeft(f.err)
				break attempts
			}
			after, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
			if ok {
				f.retryAfter = round(after.Seconds(), 3)
			} else {
				after = time.Second
			}
			if pl.cfg.RetryRejected {
				if rejections == maxRetries {
					break attempts
				}
				rejections++
				wait = after
				continue
			}
			if retry() {
				continue
			}
			f.err = pl.noResumeLeft(f.err)
			break attempts
		default:
			resp.Body.Close()
			failed(StatusFailed, "HTTP "+resp.Status)
			break attempts
		}
		if s == nil {
			f.waited = sent.Sub(firstTry)
			f.size = fileSize(resp)
			limit := watchLeft
			if seekAt >= 0 && seekAt < watchLeft && f.size > 0 {
				limit, f.seek = seekAt, true
			}
			s = &stream{pl: pl, base: sent, ver: versionOf(resp), first: first,
				p: playback{startup: pl.cfg.Startup, rebuffer: pl.cfg.Rebuffer, limit: limit}}
		} else if err := s.ver.continues(resp, next); err != nil {
			resp.Body.Close()
			failed(StatusFailed, err.Error())
			break
		}
		f.status, f.err = StatusOK, ""
		backoff, rejections = 0, 0
		start, end := span(resp, next)
		cut := s.read(ctx, sctx, cancel, resp.Body, start, end, &f)
		resp.Body.Close()
		if cut == nil {
			break
		}
		next = s.next
		f.status, f.err = StatusFailed, fmt.Sprintf("body cut at byte %d: %v", next, cut)
		if !pl.resume() {
			f.err = pl.noResumeLeft(f.err)
			break
		}
		// A body cut short is resumed at once, as players do.
	}
	if s != nil {
		s.halt(time.Since(s.base)) // if nothing stopped it yet: a failure
		s.finish(&f)
	}
	if f.end != EndWatch {
		f.seek = false
	}
	return f
}

// noResumeLeft adds to a failure's message that the player gave up
// because it had no resume left, if it had any.
func (pl *player) noResumeLeft(msg string) string {
	if pl.cfg.Resume == 0 {
		return msg
	}
	return fmt.Sprintf("%s (no resume left of %d)", msg, pl.cfg.Resume)
}

// interrupted ends a fetch whose context ended while it waited for an
// answer or for its next attempt. With a stream, playback stopped: at its
// limit, or at the run's end. Without one, a failure being retried
// stands; otherwise the first request fails, and a seek just ends.
func interrupted(s *stream, f *fetched, first bool, msg string) {
	switch {
	case s != nil:
		f.status, f.err, f.end = StatusOK, "", EndCancel
		if s.reached.Load() {
			f.end = EndWatch
		}
	case f.status != "":
	case first:
		f.status, f.err = StatusFailed, msg
	default:
		// The run ended while a seek waited for its answer.
		f.status, f.end = StatusOK, EndCancel
	}
}

// newRequest returns the player's GET of its file from offset, with
// If-Range if ifRange is not empty.
func (pl *player) newRequest(ctx context.Context, offset int64, ifRange string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pl.target.URL, nil)
	if err != nil {
		return nil, err
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
	if ifRange != "" {
		req.Header.Set("If-Range", ifRange)
	}
	return req, nil
}

// transient reports whether err, from Client.Do, is the network's: a
// connection refused, reset or closed before the response. A request the
// client would not send or follow (a bad URL, too many redirects) is not
// worth another try.
func transient(err error) bool {
	if errors.Is(err, errRedirects) {
		return false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // a url.Error is a net.Error itself
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}

// stream is the playback of one fetch from its first 200 or 206 on,
// across the resumes that continue that response: time zero of the model
// is when that response's request was sent.
type stream struct {
	pl    *player
	base  time.Time
	ver   version // of the first response; resumes must match it
	first bool    // keep the trace and rate
	p     playback
	next  int64 // file offset of the next byte wanted

	// The limit may come while a read waits for data that does not come:
	// a timer then ends the fetch, as the player would close it.
	reached           atomic.Bool
	limitTimer, pause *time.Timer
	rateBase          int64

	stopped bool
	stop    time.Duration // when the player stopped reading
}

// read plays body, which holds the file from offset start up to end
// (exclusive; -1 if unknown), until playback ends, with f.end set, or
// the body is cut short: it then returns why, and playback carries on
// for a resume to continue. sctx is the fetch's context, cancel ends it;
// ctx is the run's.
func (s *stream) read(ctx, sctx context.Context, cancel context.CancelFunc, body io.Reader, start, end int64, f *fetched) error {
	pl, cfg := s.pl, s.pl.cfg
	s.next = start
	for {
		n, err := body.Read(pl.buf)
		t := time.Since(s.base)
		if n > 0 {
			if cfg.Verify != nil {
				// Called on the read buffer itself: no copy per read.
				if verr := cfg.Verify(pl.target.URL, s.next, pl.buf[:n]); verr != nil {
					s.halt(t)
					f.status, f.end, f.wrongBytes = StatusFailed, EndError, true
					f.err = fmt.Sprintf("wrong bytes: %d bytes at offset %d: %v", n, s.next, verr)
					return nil
				}
			}
			s.next += int64(n)
			f.bytes += int64(n)
			if s.first {
				if b := int(t / time.Second); b < maxTrace {
					for len(f.trace) <= b {
						f.trace = append(f.trace, 0)
					}
					f.trace[b] += int64(n)
				}
				if t <= cfg.RateFrom {
					s.rateBase = f.bytes
				}
			}
			s.p.receive(t, mediaTime(f.bytes, pl.target.Bitrate))
		}
		if errors.Is(err, io.EOF) && end >= 0 && s.next < end {
			// A response delimited by the connection's close, cut short:
			// Content-Range promised more.
			err = fmt.Errorf("response ended before byte %d it promised", end)
		}
		switch {
		case s.p.done:
			f.end = EndWatch
		case errors.Is(err, io.EOF):
			s.p.end(t)
			f.end = EndEOF
		case err != nil:
			switch {
			case s.reached.Load():
				f.end = EndWatch
			case ctx.Err() != nil:
				f.end = EndCancel
			default:
				return err
			}
		}
		if f.end != "" {
			s.halt(t)
			return nil
		}
		if s.limitTimer == nil {
			if at, ok := s.p.limitAt(); ok {
				s.limitTimer = time.AfterFunc(at-time.Since(s.base), func() {
					s.reached.Store(true)
					cancel()
				})
			}
		}
		if d := s.p.excess(cfg.MaxBuffer); d > 0 {
			// A browser's player stops reading while its buffer is full;
			// the server then waits on a full TCP window.
			if s.pause == nil {
				s.pause = time.NewTimer(d)
			} else {
				s.pause.Reset(d)
			}
			select {
			case <-s.pause.C:
			case <-sctx.Done():
			}
		}
	}
}

// halt records that the player stopped reading at t, unless it already
// did: a stall still going on counts up to t.
func (s *stream) halt(t time.Duration) {
	if s.stopped {
		return
	}
	s.stopped, s.stop = true, t
	s.p.stop(t)
}

func (s *stream) stopTimers() {
	if s.limitTimer != nil {
		s.limitTimer.Stop()
	}
	if s.pause != nil {
		s.pause.Stop()
	}
}

// finish fills in f's outcome and (if first) rate, once the player
// stopped.
func (s *stream) finish(f *fetched) {
	cfg := s.pl.cfg
	f.out = outcomeOf(&s.p, 0, s.stop)
	if s.first && s.stop >= cfg.RateFrom+time.Second {
		r := round(float64(f.bytes-s.rateBase)*8/(s.stop-cfg.RateFrom).Seconds(), 0)
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
