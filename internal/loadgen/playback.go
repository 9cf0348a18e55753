package loadgen

import "time"

// mediaTime returns how long n bytes of media play at bitrate bits/s,
// rounded down to the nanosecond. bitrate is at most maxBitrate, so the
// remainder times a second cannot overflow.
func mediaTime(n, bitrate int64) time.Duration {
	bits := n * 8
	return time.Duration(bits/bitrate)*time.Second +
		time.Duration(bits%bitrate*int64(time.Second)/bitrate)
}

// playback is the buffer of one request of a player, in media time, as
// the receive timeline goes by: what arrived, what was played, when
// playback started and when it stalled. All times are since the request
// was sent. It is computed from the receive events alone, with no timer:
// between two events the player plays at real-time speed while it has
// media.
//
// The rules, as players behave: playback starts once startup of media is
// buffered; if the buffer runs empty while playing, that is a stall, and
// playback resumes once rebuffer of media is buffered again. The end of
// the file is no stall: whatever is buffered then is played out. The
// player stops playing once it played limit (its watch time left, or the
// time to its next seek).
type playback struct {
	startup, rebuffer, limit time.Duration

	at      time.Duration // time of the last event
	recv    time.Duration // media received
	pos     time.Duration // media played
	playing bool
	started bool
	eof     bool
	done    bool // limit reached or played to the end of the file

	startupAt time.Duration // when startup was first buffered
	stalls    int
	stalled   time.Duration // total stall time, ended stalls and one cut short
	stallFrom time.Duration // when the current stall began
}

// advance plays from the last event to t, with no new media.
func (p *playback) advance(t time.Duration) {
	if t < p.at {
		t = p.at // events are in time order; never play backwards
	}
	elapsed := t - p.at
	p.at = t
	if !p.playing || p.done {
		return
	}
	end := min(p.recv, p.limit)
	left := end - p.pos
	switch {
	case elapsed < left:
		p.pos += elapsed
	case end == p.limit || p.eof:
		p.pos = end
		p.done = true
	case elapsed == left:
		// The buffer is empty at this very instant: media arriving now
		// keeps playback going, so it is no stall (yet).
		p.pos = end
	default:
		p.pos = end
		p.playing = false
		p.stalls++
		p.stallFrom = t - elapsed + left
	}
}

// receive records that the media received so far amounts to recv at t.
func (p *playback) receive(t, recv time.Duration) {
	p.advance(t)
	if p.done {
		return
	}
	p.recv = max(p.recv, recv)
	p.resume(t)
}

// resume starts or resumes playback at t if enough media is buffered.
func (p *playback) resume(t time.Duration) {
	if p.playing || p.done {
		return
	}
	need := p.startup
	if p.started {
		need = p.rebuffer
	}
	if p.recv-p.pos < need && !(p.eof && p.recv > p.pos) {
		return
	}
	p.playing = true
	if !p.started {
		p.started = true
		p.startupAt = t
	} else {
		p.stalled += t - p.stallFrom
	}
}

// end records the end of the file at t: playback starts even with less
// than startup buffered, and the rest is played out at once (the player
// closes the connection and plays from its buffer, with nothing left that
// could stall).
func (p *playback) end(t time.Duration) {
	p.advance(t)
	if p.done {
		return
	}
	p.eof = true
	p.resume(t)
	if !p.playing {
		// Nothing buffered: an empty file, or the buffer ran dry just
		// before the end was seen.
		if p.started {
			p.stalled += t - p.stallFrom
		}
		p.done = true
		return
	}
	p.advance(t + min(p.recv, p.limit) - p.pos)
}

// stop records that the request ended at t before the end of the file: the
// limit was reached, or the run was cancelled, or the connection failed.
// A stall still going on is counted up to t.
func (p *playback) stop(t time.Duration) {
	p.advance(t)
	if p.started && !p.playing && !p.done {
		p.stalled += t - p.stallFrom
		p.stallFrom = t
	}
}

// limitAt returns when playback reaches the limit if no media arrives any
// more, which is when the player stops; ok is false while the limit is
// not buffered yet or playback waits for media (later media decides).
func (p *playback) limitAt() (t time.Duration, ok bool) {
	if !p.playing || p.done || p.recv < p.limit {
		return 0, false
	}
	return p.at + p.limit - p.pos, true
}

// excess returns how much more than max is buffered at the last event:
// for how long a player with a buffer of max stops reading. It is zero
// while playback waits, so a player never stops reading before it starts.
func (p *playback) excess(max time.Duration) time.Duration {
	if max <= 0 || !p.playing || p.done {
		return 0
	}
	return p.recv - p.pos - max
}

// sample is one point of a receive timeline: the bytes received so far,
// and when, since the request was sent.
type sample struct {
	at    time.Duration
	bytes int64
}

// model is what a player needs to play one request: the media's bitrate
// in bits/s and its buffer thresholds.
type model struct {
	bitrate                      int64
	startup, rebuffer, maxBuffer time.Duration
}

// outcome is what a player experienced during one request.
type outcome struct {
	Started  bool
	Startup  time.Duration // since the request, when Started
	Stalls   int
	Stalled  time.Duration
	Played   time.Duration
	Paused   time.Duration // reading held back by maxBuffer
	Done     bool          // reached the limit or played out the file
	Duration time.Duration // when the player stopped reading
}

// simulate plays a receive timeline, as the network would deliver it to
// a greedy reader, through the model: a player with maxBuffer stops
// reading while its buffer is fuller than that, and samples due meanwhile
// arrive when it reads again (the kernel holds them). eof says whether the
// last sample is the end of the file; if not, the request stops at stopAt
// (or at the last sample, if later). It is the player's own logic without
// the network, for tests.
func simulate(m model, limit time.Duration, timeline []sample, eof bool, stopAt time.Duration) outcome {
	p := playback{startup: m.startup, rebuffer: m.rebuffer, limit: limit}
	var resume, paused time.Duration
	// limitBefore stops the player if it reaches its limit by t, which cuts
	// short a pause still running.
	limitBefore := func(t time.Duration) (outcome, bool) {
		at, ok := p.limitAt()
		if !ok || at > t {
			return outcome{}, false
		}
		p.stop(at)
		if resume > at {
			paused -= resume - at
		}
		return outcomeOf(&p, paused, at), true
	}
	for i, s := range timeline {
		at := max(s.at, resume)
		if o, ok := limitBefore(at); ok {
			return o
		}
		p.receive(at, mediaTime(s.bytes, m.bitrate))
		if eof && i == len(timeline)-1 {
			p.end(at)
			return outcomeOf(&p, paused, at)
		}
		if d := p.excess(m.maxBuffer); d > 0 {
			resume = at + d
			paused += d
		}
	}
	stopAt = max(stopAt, p.at)
	if o, ok := limitBefore(stopAt); ok {
		return o
	}
	if resume > stopAt {
		paused -= resume - stopAt
	}
	p.stop(stopAt)
	return outcomeOf(&p, paused, stopAt)
}

func outcomeOf(p *playback, paused, stop time.Duration) outcome {
	return outcome{
		Started:  p.started,
		Startup:  p.startupAt,
		Stalls:   p.stalls,
		Stalled:  p.stalled,
		Played:   p.pos,
		Paused:   paused,
		Done:     p.done,
		Duration: stop,
	}
}
