package stream

import (
	"context"
	"io/fs"
	"sync"
	"time"

	"mustserv/internal/probe"
	"mustserv/internal/storage"
)

// Peaks remembers the peak bitrate of the files streamed, probing each file
// once (per identity: device, inode, size, times) when it is first asked
// for. Concurrent first requests of one file wait for a single probe. It
// stands in for the library index until there is one.
type Peaks struct {
	opts probe.Options
	max  int

	mu sync.Mutex
	m  map[fileID]*peak
}

type peak struct {
	ready chan struct{}
	bps   int64
}

// peakProbeTime bounds the probe a stream's first request waits for.
const peakProbeTime = 3 * time.Second

// NewPeaks returns a Peaks that finds peaks over window and remembers at
// most max files (0: 4096).
func NewPeaks(window time.Duration, max int) *Peaks {
	if max <= 0 {
		max = 4096
	}
	return &Peaks{opts: probe.Options{Window: window}, max: max, m: map[fileID]*peak{}}
}

// Rate returns the peak bitrate of f, described by fi, in bits per
// second; 0 when it is unknown.
func (p *Peaks) Rate(ctx context.Context, f storage.File, fi fs.FileInfo) int64 {
	id, ok := idOf(fi)
	if !ok {
		return p.probe(ctx, f, fi)
	}
	p.mu.Lock()
	e := p.m[id]
	if e == nil {
		if len(p.m) >= p.max {
			for k, old := range p.m { // random eviction, as in Cache
				select {
				case <-old.ready:
					delete(p.m, k)
				default:
					continue
				}
				break
			}
		}
		e = &peak{ready: make(chan struct{})}
		p.m[id] = e
		p.mu.Unlock()
		e.bps = p.probe(ctx, f, fi)
		close(e.ready)
		return e.bps
	}
	p.mu.Unlock()
	select {
	case <-e.ready:
		return e.bps
	case <-ctx.Done():
		return 0
	}
}

func (p *Peaks) probe(ctx context.Context, f storage.File, fi fs.FileInfo) int64 {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), peakProbeTime)
	defer cancel()
	rep, err := probe.Probe(ctx, f, fi.Size(), fi.Name(), p.opts)
	if err != nil {
		return 0
	}
	return PeakRate(rep, fi.Size())
}

// PeakRate is the rate in bits per second that a stream of a file of size
// bytes, probed as rep, needs on the wire: its peak bitrate scaled by the
// file's bytes per media byte. The probe counts media payload, as ffprobe's
// packets do; the wire carries the container too. For most files that is
// a few percent (MP4 and Matroska framing, MPEG-TS packet and PES headers),
// but a transport stream recorded from a broadcast multiplex is mostly
// padding and other programs: paced at its payload's peak it stalls at a
// third of its byte rate. Cover art is sent once, in the burst, and does
// not count. 0 means unknown.
func PeakRate(rep *probe.Report, size int64) int64 {
	if rep == nil || rep.BitratePeak <= 0 {
		return 0
	}
	peak := rep.BitratePeak
	if rep.BitrateAvg <= 0 || rep.Duration <= 0 {
		return peak
	}
	media := size
	if rep.Cover != nil && rep.Cover.Size < media {
		media -= rep.Cover.Size
	}
	wire := float64(media) * 8 / rep.Duration
	if scale := wire / float64(rep.BitrateAvg); scale > 1 {
		return int64(float64(peak) * scale)
	}
	return peak
}
