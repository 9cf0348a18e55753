package probe

import (
	"cmp"
	"slices"
)

// Packet is a span of media data: it starts at Time seconds of media time
// and holds Bytes bytes.
type Packet struct {
	Time  float64
	Bytes int64
}

// peakMeter finds the highest average bitrate over any window of media
// time, fed packets in time order. It keeps only the packets of the
// current window, so memory is bounded by the window, not the file.
//
// The definition, shared with the tests' ffprobe oracle: the peak is the
// largest sum of the sizes of packets whose start times t fall in a window
// (t0-W, t0] for any packet time t0, times 8, divided by W. A file shorter
// than W has no full window: its peak is its average bitrate.
type peakMeter struct {
	window float64
	q      []Packet // packets in the window; q[head:] are live
	head   int
	bytes  int64 // sum of q[head:].Bytes
	peak   float64
	first  float64
	last   float64
	total  int64
	n      int
}

func newPeakMeter(windowSeconds float64) *peakMeter {
	return &peakMeter{window: windowSeconds}
}

// add records a packet; packets must come in non-decreasing Time order
// (a packet out of order is counted at the latest time seen).
func (m *peakMeter) add(p Packet) {
	if m.n == 0 {
		m.first = p.Time
	}
	if p.Time < m.last {
		p.Time = m.last
	}
	m.last = p.Time
	m.n++
	m.total += p.Bytes
	m.q = append(m.q, p)
	m.bytes += p.Bytes
	for m.head < len(m.q) && m.q[m.head].Time <= p.Time-m.window {
		m.bytes -= m.q[m.head].Bytes
		m.head++
	}
	// Compact once the dead prefix dominates, so q stays window-sized.
	if m.head > 1024 && m.head*2 > len(m.q) {
		m.q = append(m.q[:0], m.q[m.head:]...)
		m.head = 0
	}
	if r := float64(m.bytes) * 8 / m.window; r > m.peak {
		m.peak = r
	}
}

// result returns the peak in bits per second, given the media's duration
// in seconds (the average bitrate stands in for files shorter than the
// window).
func (m *peakMeter) result(duration float64) int64 {
	if duration <= 0 {
		return 0
	}
	if duration < m.window {
		return int64(float64(m.total) * 8 / duration)
	}
	return int64(m.peak)
}

// Peak computes the peak bitrate of a list of packets in time order over a
// window of windowSeconds, for media lasting duration seconds, by the
// definition above. Tests use it on ffprobe's packet list as the oracle.
func Peak(packets []Packet, windowSeconds, duration float64) int64 {
	m := newPeakMeter(windowSeconds)
	for _, p := range packets {
		m.add(p)
	}
	return m.result(duration)
}

// sortPackets sorts packets by time, keeping the order of equal times,
// and returns them.
func sortPackets(pk []Packet) []Packet {
	slices.SortStableFunc(pk, func(a, b Packet) int { return cmp.Compare(a.Time, b.Time) })
	return pk
}
