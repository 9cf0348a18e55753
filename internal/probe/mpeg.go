package probe

import (
	"errors"
	"fmt"
)

// What MPEG-TS (ts.go) and MPEG-PS (mpegps.go) share: PES time stamps,
// each stream's time span and clock, and the sampling of a file larger
// than the budget — where the samples go, how each is metered, and the
// average and peak made of them.

// mpegPlan spends what is left of the budget, left bytes, on the samples
// of an MPEG-TS or MPEG-PS file of size bytes and duration seconds: n
// samples of length bytes. A sample a window and a half long at the
// average rate still covers a window where the rate is half as high
// again; as many as fit, up to 12. When fewer than 3 fit, 3 that each
// cover a window at the average rate; when not even those fit, 2 that
// share what is left. A sample in a burst, shorter in media time, reads
// on (within its share of the budget) until it covers a window.
func mpegPlan(left, size int64, duration, window float64, chunk int64) (n, length int64) {
	wb := float64(size) / duration * window // a window at the average rate
	switch n = int64(float64(left) / (1.5 * wb)); {
	case n > 12:
		n = 12
	case n >= 3:
	case float64(left) >= 3*wb:
		n = 3
	default:
		n = 2
	}
	return n, max(min(int64(1.5*wb), left/n), min(chunk, left/n))
}

// mpegPeak is the peak of a sampled MPEG-TS or MPEG-PS file, from the
// regions read. A region that spans a window of media time gives its
// highest window: a true window average, so at most the exact peak. One
// that spans less, s seconds, gives its rate over that span rather than
// nothing (which left the peak to the average of the file, far below the
// bursts that a tight budget covers only in part): the rate of a span
// shorter than a window is at least that of some window around it, so it
// errs high, by at most window/s times the exact peak, never low. Spans
// under a sixteenth of a window (a few frames) are not counted. Probe
// raises a peak below the file's average to it.
type mpegPeak struct {
	peak float64
}

func (p mpegPeak) result() float64 { return p.peak }

// add meters a region: its packets in time order, its rate over its span.
func (p *mpegPeak) add(pk []Packet, rate, span, window float64) {
	switch {
	case span >= window:
		m := newPeakMeter(window)
		for _, pt := range pk {
			m.add(pt)
		}
		p.peak = max(p.peak, m.peak, rate)
	case span >= window/16:
		p.peak = max(p.peak, rate)
	}
}

// addRegion meters the region just read.
func (p *mpegPeak) addRegion(d mpegDemuxer, window float64) {
	rate, span := d.rate()
	p.add(d.sorted(), rate, span, window)
}

// mpegClock follows one stream's decode time stamps (the DTS, or the PTS
// where there is none: these rise in the order of the file, where a
// B-frame's PTS goes back) and PES payload through a region.
type mpegClock struct {
	bytes  int64   // payload bytes so far
	t0, t1 float64 // the first and the latest time stamp of the run
	b0, b1 int64   // bytes before each
	on     bool
}

// stamp records a time stamp (in seconds) at the start of a PES, before
// its payload is counted.
func (c *mpegClock) stamp(t float64) {
	switch {
	case !c.on || t < c.t1-1 || t > c.t1+mpegGap:
		c.t0, c.b0, c.t1, c.b1, c.on = t, c.bytes, t, c.bytes, true
	case t > c.t1:
		c.t1, c.b1 = t, c.bytes
	}
}

// mpegRate is the media rate of a region, in bits per second, and the
// media time it spans: the sum over its streams of the payload between
// a stream's first and latest time stamps over the time between them.
// Each stream is timed by its own stamps, as the muxer interleaves
// streams up to a fraction of a second apart. A stream with too few
// stamps to time counts all its bytes over the longest stream's span.
func mpegRate(clocks []*mpegClock) (rate, span float64) {
	for _, c := range clocks {
		if c.on {
			span = max(span, c.t1-c.t0)
		}
	}
	if span <= 0 {
		return 0, 0
	}
	for _, c := range clocks {
		if d := c.t1 - c.t0; c.on && d >= span/2 {
			rate += float64(c.b1-c.b0) * 8 / d
		} else {
			rate += float64(c.bytes) * 8 / span
		}
	}
	return rate, span
}

// mpegCounts are the bytes a demuxer read whole and the media payload
// among them: their ratio, times the file's size, is the average's
// estimate when the file was sampled.
type mpegCounts struct {
	payload int64 // media payload bytes in what was read
	scanned int64 // bytes of the packets (TS) or packs and PES (PS) read
}

// mpegDemuxer is what sampling an MPEG-TS or MPEG-PS file needs of its
// demuxer.
type mpegDemuxer interface {
	// region reads [from, to) as a fresh stretch and returns where a
	// read going on would start.
	region(s *source, from, to int64) (int64, error)
	// readOn goes on reading the current stretch from from to to.
	readOn(s *source, from, to int64) (int64, error)
	// rate and sorted describe the stretch read (see mpegRate); span
	// is the earliest start and latest end of its media.
	rate() (rate, span float64)
	sorted() []Packet
	span() (start, end float64, ok bool)
	counts() *mpegCounts
	// report fills in the streams and the duration.
	report(rep *Report, duration float64)
}

// mpegSampled probes a file larger than the budget: the duration from the
// first time stamp in the head (at most head bytes) and the last in the
// tail (tail bytes, more while none is found), then the samples between
// them (mpegSample). budget is what the probe had before the program
// tables were read.
func mpegSampled(s *source, d mpegDemuxer, rep *Report, budget, head, tail int64, window float64, chunk int64) error {
	headEnd := min(s.size, head, budget/8)
	if _, err := d.region(s, 0, headEnd); err != nil {
		return err
	}
	start, _, ok := d.span()
	if !ok {
		return fmt.Errorf("%w: no time stamps in the first %d bytes", ErrCorrupt, headEnd)
	}
	var peak mpegPeak
	peak.addRegion(d, window)
	var end float64
	tailStart := s.size
	for n := min(tail, budget/8); ; n *= 4 {
		tailStart = max(headEnd, s.size-n)
		if _, err := d.region(s, tailStart, s.size); err != nil {
			return err
		}
		if _, e, ok := d.span(); ok {
			end = e
			break
		}
		if tailStart == headEnd || 4*n > budget/4 {
			return fmt.Errorf("%w: no time stamps in the last %d bytes", ErrCorrupt, s.size-tailStart)
		}
	}
	if !(end-start >= 0.001) {
		return fmt.Errorf("%w: the last time stamp (%.3f s) is not after the first (%.3f s)", ErrCorrupt, end, start)
	}
	d.report(rep, end-start)
	peak.addRegion(d, window)
	return mpegSample(s, d, rep, &peak, headEnd, tailStart, window, chunk)
}

// mpegSample reads samples evenly spaced between the head (ending at
// headEnd) and the tail (starting at tailStart), as mpegPlan spends the
// budget, meters each into peak, and sets the report's average and peak
// (method index) from them. A sample that covers less than a window of
// media time (a burst) reads on within its share of the budget.
func mpegSample(s *source, d mpegDemuxer, rep *Report, peak *mpegPeak, headEnd, tailStart int64, window float64, chunk int64) error {
	c := d.counts()
	n, length := mpegPlan(s.budget, s.size, rep.Duration, window, chunk)
	if gap := tailStart - headEnd; gap > 0 {
		for k := range n {
			share := s.budget / (n - k)
			l := min(length, share, s.size)
			at := headEnd + (2*k+1)*gap/(2*n) - l/2
			at = min(max(at, 0), s.size-l)
			next, err := d.region(s, at, at+l)
			// What reads on is left out of the payload's share: a
			// burst is denser in payload, and the average would err
			// high.
			saved := *c
			for err == nil && next < s.size && next-at < share {
				if _, span := d.rate(); span >= window {
					break
				}
				prev := next
				next, err = d.readOn(s, next, min(next+max(l/2, chunk), at+share, s.size))
				if next <= prev {
					break
				}
			}
			if err != nil && !errors.Is(err, ErrBudget) {
				return err
			}
			*c = saved
			peak.addRegion(d, window)
			if err != nil {
				break // out of budget: what was read will do
			}
		}
	}
	// The average: the share of media payload in the bytes read, over
	// the whole file. Packet headers, PSI, PES and pack headers and null
	// packets are not media; ffprobe's packets are the PES payloads.
	if c.scanned > 0 {
		rep.BitrateAvg = bitRate(float64(c.payload)/float64(c.scanned)*float64(s.size), rep.Duration)
	}
	if p := peak.result(); p > 0 {
		rep.BitratePeak = int64(min(p, 1<<62))
		rep.PeakMethod = Index
	}
	return nil
}

// mpegSpan is the media time a stream showed in a region: its earliest
// and latest frame starts, and the latest frame's duration when known.
type mpegSpan struct {
	seen       bool
	minT, maxT float64
	maxDur     float64
}

// mark records a frame at t lasting dur.
func (s *mpegSpan) mark(t, dur float64) {
	if !s.seen {
		s.minT, s.maxT, s.maxDur, s.seen = t, t, dur, true
	}
	s.minT = min(s.minT, t)
	if t >= s.maxT {
		s.maxT, s.maxDur = t, dur
	}
}

// pesOptional reads the optional part of an MPEG-2 PES header, which b
// starts with (two flags bytes, then the header data length): its
// length, PTS and DTS (-1 without one). MPEG-TS and MPEG-2 program
// streams share it.
func pesOptional(b []byte) (hdr int, pts, dts int64, ok bool) {
	if len(b) < 3 {
		return 0, -1, -1, false
	}
	hdr = 3 + int(b[2])
	if hdr > len(b) {
		return 0, -1, -1, false
	}
	pts, dts = -1, -1
	if b[1]&0x80 != 0 && b[2] >= 5 {
		pts = psTime(b[3:8])
		if b[1]&0x40 != 0 && b[2] >= 10 {
			dts = psTime(b[8:13])
		}
	}
	return hdr, pts, dts, true
}

func psTime(b []byte) int64 {
	return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}
