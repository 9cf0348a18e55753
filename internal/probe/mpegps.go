package probe

import (
	"encoding/binary"
	"fmt"
	"math"
)

// MPEG program streams (.mpg, .mpeg, .vob): packs (an MPEG-1 or MPEG-2
// pack header with the SCR) of PES packets. Like a transport stream, a
// program stream has no index: the duration runs from the earliest PTS of
// a head read to the end of the latest frame of a tail read. The packets
// are ffprobe's: MPEG audio and AC-3 PES payloads split into frames by
// their headers, MPEG video payloads split at picture start codes (each
// picture timed from its PES's PTS and its temporal reference). A file
// within the byte budget is read whole: average and peak are exact. A
// larger one is sampled as a transport stream is (mpegPlan, mpegPeak in
// ts.go): the head, the tail and 2 to 12 evenly spaced reads give the
// peak (method index), and their share of media payload in the bytes
// read, times the file's size, the average.

const (
	psChunk = 64 << 10 // bytes read at a time
	psHead  = 1 << 20  // head read of a sampled file
	psTail  = 256 << 10
	psClock = 90000
	psWrap  = 1 << 33
)

func matchMPEGPS(head []byte, _ string) bool {
	return len(head) >= 5 && head[0] == 0 && head[1] == 0 && head[2] == 1 && head[3] == 0xba &&
		(head[4]>>6 == 1 || head[4]>>4 == 2)
}

type psKind int

const (
	psVideo  psKind = iota // MPEG-1/2 video: pictures
	psMPA                  // MPEG audio frames
	psAC3                  // AC-3 frames
	psWhole                // one packet a PES (DTS, LPCM, unknown video)
	psIgnore               // subpictures and the like
)

// psStream is one elementary stream and the state of its walk in the
// region being read.
type psStream struct {
	id     int // stream id, or 0x100 + sub-stream id in private stream 1
	stream Stream
	kind   psKind
	skip   int // sub-stream header bytes after the PES header
	key    uint32

	frameDur float64 // video: 1/frame rate; audio: the last frame's
	// The PES being read.
	pesTime    float64
	hasTime    bool // a PTS seen in this region
	pesPending bool // the PTS belongs to the next frame to start
	idx        int  // frames since the PTS
	cur        Packet
	open       bool // cur is counting bytes
	timed      bool // cur has a time
	// Audio frame walk.
	need int // bytes left of the current frame
	hdr  [8]byte
	nhdr int
	// Video start code walk.
	sc       int // bytes of 00 00 01 matched
	code     int // start code whose header bytes are being collected, -1 none
	hb       [4]byte
	nhb      int
	pendHdr  bool // a sequence or GOP header opened cur; its picture is next
	sniffed  bool // the sequence header was read
	refTref  int  // the temporal reference of the picture the last PTS timed
	refTime  float64
	refOK    bool // no GOP header since
	lastPic  float64
	mpegSpan // what the region showed
	clock    mpegClock
}

// psDemux reads packs and PES packets.
type psDemux struct {
	streams []*psStream
	byID    map[int]*psStream
	base    int64 // the first PTS, in ticks; -1 before
	packets []Packet
	mpegCounts
	buf []byte
}

func parseMPEGPS(s *source, rep *Report) error {
	d := &psDemux{byID: map[int]*psStream{}, base: -1, buf: make([]byte, 0, 2*psChunk+8)}
	window := s.window.Seconds()
	if s.size <= s.budget {
		if _, err := d.region(s, 0, s.size); err != nil {
			return err
		}
		start, end, ok := d.span()
		if !ok || end-start < 0.001 {
			return fmt.Errorf("%w: no two time stamps in %d bytes", ErrCorrupt, s.size)
		}
		d.report(rep, end-start)
		m := newPeakMeter(window)
		for _, p := range d.sorted() {
			m.add(p)
		}
		rep.BitrateAvg = bitRate(float64(d.payload), rep.Duration)
		rep.BitratePeak = m.result(rep.Duration)
		rep.PeakMethod = Exact
		return nil
	}

	return mpegSampled(s, d, rep, s.budget, psHead, psTail, window, psChunk)
}

// rate is the media rate of the region just read, in bits per second, and
// the media time it spans (see mpegRate).
func (d *psDemux) rate() (rate, span float64) {
	clocks := make([]*mpegClock, 0, len(d.streams))
	for _, st := range d.streams {
		if st.kind != psIgnore {
			clocks = append(clocks, &st.clock)
		}
	}
	return mpegRate(clocks)
}

// report fills in the streams and the duration.
func (d *psDemux) report(rep *Report, duration float64) {
	rep.Duration = math.Round(duration*1e6) / 1e6
	for _, st := range d.streams {
		if st.kind != psIgnore && st.stream.Codec != "" {
			rep.Streams = append(rep.Streams, st.stream)
		}
	}
}

// sorted closes the region's open packets and returns its packets in time
// order.
func (d *psDemux) sorted() []Packet {
	for _, st := range d.streams {
		d.close(st)
	}
	return sortPackets(d.packets)
}

// span is the earliest start and latest end of the region's media.
func (d *psDemux) span() (start, end float64, ok bool) {
	d.sorted()
	start, end = math.Inf(1), math.Inf(-1)
	for _, st := range d.streams {
		if !st.seen {
			continue
		}
		start, end = min(start, st.minT), max(end, st.maxT+st.maxDur)
		ok = true
	}
	return start, end, ok
}

// region reads [from, to) as a fresh stretch: the frames in progress at
// its start are skipped until their streams find a frame start again. It
// returns where a read going on would start.
func (d *psDemux) region(s *source, from, to int64) (int64, error) {
	d.packets = d.packets[:0]
	for _, st := range d.streams {
		*st = psStream{id: st.id, stream: st.stream, kind: st.kind, skip: st.skip, key: st.key,
			frameDur: st.frameDur, sniffed: st.sniffed, code: -1}
	}
	return d.scan(s, from, to)
}

// scan reads the packs and PES packets in [from, to), finding a start
// code again wherever the sync is lost. A unit cut by the end of the file
// is read as far as it goes; one cut by to, before the end, is left for a
// read going on from the offset scan returns.
func (d *psDemux) scan(s *source, from, to int64) (int64, error) {
	b := d.buf[:0]
	pos := from // file offset of b[0]
	for {
		// Top up the buffer: a PES packet is at most 65,541 bytes.
		if n := min(int64(psChunk), to-pos-int64(len(b))); n > 0 && len(b) < psChunk+8 {
			l := len(b)
			b = b[:l+int(n)]
			if _, err := s.ReadAt(b[l:], pos+int64(l)); err != nil {
				return pos, fmt.Errorf("mpeg-ps at %d: %w", pos+int64(l), err)
			}
		}
		final := pos+int64(len(b)) >= to
		i, err := d.units(s, b, final, to >= s.size)
		if err != nil || final {
			return pos + int64(i), err // at the end, what is left is a unit cut short
		}
		b = append(b[:0], b[i:]...)
		pos += int64(i)
	}
}

// units reads the whole packs and PES packets at the start of b and
// returns how many bytes they took. When b is final, at the end of the
// file (eof), a PES packet cut short is read too.
func (d *psDemux) units(s *source, b []byte, final, eof bool) (int, error) {
	i := 0
	for len(b)-i >= 6 {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 || b[i+3] < 0xb9 {
			k := psResync(b[i+1:])
			if k < 0 {
				return max(i, len(b)-3), nil
			}
			i += 1 + k
			continue
		}
		if err := s.step(); err != nil {
			return i, err
		}
		at := i
		switch code := b[i+3]; code {
		case 0xba:
			if len(b)-i < 14 {
				return i, nil
			}
			switch {
			case b[i+4]>>6 == 1: // MPEG-2: SCR, mux rate, stuffing
				i += 14 + int(b[i+13]&7)
			case b[i+4]>>4 == 2: // MPEG-1
				i += 12
			default:
				i++
			}
		case 0xb9: // program end
			i += 4
		default:
			n := 6 + int(binary.BigEndian.Uint16(b[i+4:]))
			if len(b)-i < n {
				if final && eof {
					d.pes(int(code), b[i+6:]) // cut by the end of the file
					d.scanned += int64(len(b) - i)
					return len(b), nil
				}
				return i, nil
			}
			d.pes(int(code), b[i+6:i+n])
			i += n
		}
		// The share of payload counts whole units only, not the bytes
		// skipped to find the first.
		d.scanned += int64(i - at)
	}
	return i, nil
}

// psResync finds the next start code of a pack or PES packet in b.
func psResync(b []byte) int {
	for k := 0; k+4 <= len(b); k++ {
		if b[k] == 0 && b[k+1] == 0 && b[k+2] == 1 && b[k+3] >= 0xb9 {
			return k
		}
	}
	return -1
}

// psPESHeader reads an MPEG-2 or MPEG-1 PES header (after the length) at
// the start of b: its length, PTS and DTS (-1 without one).
func psPESHeader(b []byte) (hdr int, pts, dts int64, ok bool) {
	pts, dts = -1, -1
	if len(b) >= 3 && b[0]>>6 == 2 { // MPEG-2
		return pesOptional(b)
	}
	j := 0
	for j < len(b) && j < 16 && b[j] == 0xff { // stuffing
		j++
	}
	if j < len(b) && b[j]>>6 == 1 { // STD buffer
		j += 2
	}
	if j >= len(b) {
		return 0, -1, -1, false
	}
	switch b[j] >> 4 {
	case 2:
		if j+5 > len(b) {
			return 0, -1, -1, false
		}
		return j + 5, psTime(b[j : j+5]), -1, true
	case 3:
		if j+10 > len(b) {
			return 0, -1, -1, false
		}
		return j + 10, psTime(b[j : j+5]), psTime(b[j+5 : j+10]), true
	}
	if b[j] == 0x0f {
		return j + 1, -1, -1, true
	}
	return 0, -1, -1, false
}

// seconds turns a PTS into seconds from the first one seen, unwrapping
// the 33-bit clock.
func (d *psDemux) seconds(pts int64) float64 {
	if d.base < 0 {
		d.base = pts
	}
	delta := (pts - d.base) & (psWrap - 1)
	if delta >= psWrap/2 {
		delta -= psWrap
	}
	return float64(d.base+delta) / psClock
}

// pes handles one PES packet of stream id code, b after its length.
func (d *psDemux) pes(code int, b []byte) {
	var kind psKind
	switch {
	case code >= 0xe0 && code <= 0xef:
		kind = psVideo
	case code >= 0xc0 && code <= 0xdf:
		kind = psMPA
	case code == 0xbd:
		kind = psWhole // until its sub-stream id says more
	default:
		return // system header, stream map, padding, private stream 2...
	}
	hdr, pts, dts, ok := psPESHeader(b)
	if !ok {
		return
	}
	p := b[hdr:]
	id := code
	if code == 0xbd {
		if len(p) < 1 {
			return
		}
		id = 0x100 | int(p[0])
	}
	st := d.byID[id]
	if st == nil {
		st = &psStream{id: id, kind: kind, code: -1}
		switch {
		case kind == psVideo:
			st.stream = Stream{Type: "video"}
		case kind == psMPA:
			st.stream = Stream{Type: "audio"}
		default:
			sub := p[0]
			st.stream = Stream{Type: "audio"}
			switch {
			case sub >= 0x80 && sub <= 0x87:
				st.kind, st.skip, st.stream.Codec = psAC3, 4, "ac3"
			case sub >= 0x88 && sub <= 0x8f:
				st.kind, st.skip, st.stream.Codec = psWhole, 4, "dts"
			case sub >= 0xa0 && sub <= 0xaf:
				st.kind, st.skip, st.stream.Codec = psWhole, 7, "pcm_dvd"
			default:
				st.kind = psIgnore // subpictures and the like
			}
		}
		d.byID[id] = st
		d.streams = append(d.streams, st)
	}
	if st.kind == psIgnore {
		return
	}
	p = p[min(st.skip, len(p)):]
	d.payload += int64(len(p))
	if dts < 0 {
		dts = pts
	}
	if dts >= 0 {
		st.clock.stamp(d.seconds(dts))
	}
	st.clock.bytes += int64(len(p))
	if pts >= 0 {
		st.pesTime, st.hasTime, st.pesPending, st.idx = d.seconds(pts), true, true, 0
	}
	switch st.kind {
	case psVideo:
		d.pictures(st, p)
	case psMPA, psAC3:
		d.frames(st, p)
	default:
		if st.pesPending {
			d.open(st, st.pesTime, 0)
			st.pesPending = false
		}
		d.add(st, len(p))
	}
}

// open starts a packet of st at time t (closing the one in progress);
// dur is its frame's duration when known.
func (d *psDemux) open(st *psStream, t, dur float64) {
	d.close(st)
	st.cur, st.open, st.timed = Packet{Time: t}, true, true
	st.mark(t, dur)
}

func (d *psDemux) close(st *psStream) {
	if st.open && st.timed && st.cur.Bytes > 0 {
		d.packets = append(d.packets, st.cur)
	}
	st.open = false
}

func (d *psDemux) add(st *psStream, n int) {
	if st.open {
		st.cur.Bytes += int64(n)
	}
}

// frames splits an audio payload into frames by their headers, each
// counted at its own time, like ffprobe's packets. A header that makes no
// sense loses the sync: the walk looks for the next header byte by byte.
func (d *psDemux) frames(st *psStream, p []byte) {
	hl := 4
	if st.kind == psAC3 {
		hl = 8
	}
	for len(p) > 0 {
		if st.need > 0 {
			n := min(len(p), st.need)
			d.add(st, n)
			st.need -= n
			p = p[n:]
			continue
		}
		n := copy(st.hdr[st.nhdr:hl], p)
		st.nhdr += n
		p = p[n:]
		if st.nhdr < hl {
			return
		}
		size, dur := d.frameHeader(st, st.hdr[:hl])
		if size < hl {
			// Not a header: slide on by a byte.
			copy(st.hdr[:], st.hdr[1:hl])
			st.nhdr = hl - 1
			continue
		}
		st.nhdr = 0
		switch {
		case st.pesPending:
			d.open(st, st.pesTime, dur)
			st.pesPending, st.idx = false, 1
		case st.hasTime:
			d.open(st, st.pesTime+float64(st.idx)*dur, dur)
			st.idx++
		default: // no time yet in this region
			d.close(st)
		}
		d.add(st, hl)
		st.need = size - hl
	}
}

// frameHeader reads an audio frame header: the frame's size (0 when the
// header is not one) and duration. The first header names the codec and
// gives the rate and channels.
func (d *psDemux) frameHeader(st *psStream, h []byte) (int, float64) {
	var rate, channels, size, samples int
	switch st.kind {
	case psMPA:
		f, ok := mpegHeader(h)
		if !ok || st.key != 0 && f.key != st.key {
			return 0, 0
		}
		if st.key == 0 {
			st.key = f.key
			st.stream.Codec = f.codec()
		}
		rate, channels, size, samples = f.rate, f.channels, f.size, f.samples
	case psAC3:
		var independent, ok bool
		size, rate, channels, samples, independent, ok = tsAC3Header(h)
		if !ok || !independent {
			return 0, 0
		}
	}
	if rate == 0 {
		return 0, 0
	}
	if st.stream.SampleRate == 0 {
		st.stream.SampleRate, st.stream.Channels = rate, channels
	}
	st.frameDur = float64(samples) / float64(rate)
	return size, st.frameDur
}

// psFrameRates are MPEG video's frame_rate_code values.
var psFrameRates = [...]float64{0, 24000.0 / 1001, 24, 25, 30000.0 / 1001, 30, 50, 60000.0 / 1001, 60}

// pictures splits a video payload at its start codes: a sequence or GOP
// header opens a packet that its picture joins; a picture without one
// opens its own. A picture starting in a PES with a PTS takes it; the
// pictures after it take it plus the difference of their temporal
// references.
func (d *psDemux) pictures(st *psStream, p []byte) {
	from := 0 // bytes of p before from are counted
	for i := 0; i < len(p); i++ {
		c := p[i]
		if st.code >= 0 { // collecting a header's bytes
			st.hb[st.nhb] = c
			st.nhb++
			if st.nhb == psHeaderBytes(st.code) {
				d.videoHeader(st)
				st.code = -1
			}
		}
		switch {
		case st.sc == 3:
			st.sc = 0
			switch c {
			case 0xb3, 0xb8, 0x00, 0xb5:
				st.code, st.nhb = int(c), 0
				if c == 0xb5 {
					break
				}
				// The start code's bytes go to the packet it opens
				// (those cut by the PES before stay with the last).
				at := max(i-3, from)
				d.add(st, at-from)
				from = at
				if c == 0 && st.pendHdr {
					st.pendHdr = false
					break
				}
				d.close(st)
				st.cur, st.open, st.timed = Packet{}, true, false
				st.pendHdr = c != 0
			}
			if c == 0 {
				st.sc = 1
			}
		case c == 0:
			st.sc = min(st.sc+1, 2)
		case c == 1 && st.sc == 2:
			st.sc = 3
		default:
			st.sc = 0
		}
	}
	d.add(st, len(p)-from)
}

// psHeaderBytes is how many bytes after a start code videoHeader reads.
func psHeaderBytes(code int) int {
	switch code {
	case 0xb3: // size, aspect and frame rate
		return 4
	case 0x00: // temporal reference and picture type
		return 2
	}
	return 1 // a sequence extension's id, or a GOP
}

// videoHeader reads the header bytes after a start code.
func (d *psDemux) videoHeader(st *psStream) {
	h := st.hb[:st.nhb]
	switch st.code {
	case 0xb3: // sequence header: size, aspect and frame rate
		if len(h) >= 4 && !st.sniffed {
			st.sniffed = true
			st.stream.Codec = "mpeg1video"
			st.stream.Width, st.stream.Height = int(h[0])<<4|int(h[1]>>4), int(h[1]&0xf)<<8|int(h[2])
			if r := int(h[3] & 0xf); r < len(psFrameRates) && r > 0 {
				st.stream.FrameRate = psFrameRates[r]
				st.frameDur = 1 / psFrameRates[r]
			}
		}
	case 0xb5: // a sequence extension makes it MPEG-2
		if len(h) >= 1 && h[0]>>4 == 1 && st.stream.Codec == "mpeg1video" {
			st.stream.Codec = "mpeg2video"
		}
	case 0xb8: // GOP: temporal references start again
		st.refOK = false
	case 0x00:
		if len(h) < 2 || !st.open {
			return
		}
		tref := int(h[0])<<2 | int(h[1]>>6)
		var t float64
		switch {
		case st.pesPending:
			t = st.pesTime
			st.pesPending = false
			st.refTref, st.refTime, st.refOK = tref, t, true
		case st.refOK && st.frameDur > 0:
			t = st.refTime + float64(tref-st.refTref)*st.frameDur
		case st.hasTime:
			t = st.lastPic + st.frameDur // decoding order stands in
		default:
			return // no time yet in this region
		}
		st.lastPic = t
		st.cur.Time, st.timed = t, true
		st.mark(t, st.frameDur)
	}
}

// readOn reads on from where a region stopped (see mpegDemuxer).
func (d *psDemux) readOn(s *source, from, to int64) (int64, error) { return d.scan(s, from, to) }

// counts returns the demuxer's byte counts (see mpegDemuxer).
func (d *psDemux) counts() *mpegCounts { return &d.mpegCounts }
