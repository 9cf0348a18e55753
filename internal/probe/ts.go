package probe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
)

// MPEG-TS and M2TS: 188-byte transport packets, or 192-byte BDAV packets
// (a 4-byte arrival time stamp, then the 188 bytes), or 204-byte packets
// (188 bytes and 16 of Reed-Solomon parity). The PAT names the first
// program's PMT, the PMT its streams and their codecs. A transport stream
// has no index: the duration runs from the earliest PES time stamp of a
// head read to the end of the latest frame of a tail read (PCRs stand in
// when no PES carries a time stamp). A file within the byte budget is
// read whole, and its average and peak are exact. A larger one is
// sampled (mpegPlan, mpegPeak): the head, the tail and 2 to 12 evenly
// spaced reads give the peak (method index: bursts between the samples
// go unseen), and their share of media payload in the bytes read, times
// the file's size, gives the average.

const (
	tsSync       = 0x47
	tsMaxSection = 1024     // PAT and PMT sections are at most 1,021 bytes after their length
	tsChunk      = 64 << 10 // bytes read at a time
	tsPSIChunk   = 16 << 10 // bytes read at a time while looking for the PAT and PMT
	tsPSIMax     = 4 << 20  // the PAT and PMT must come within this many bytes
	tsHead       = 1 << 20  // head read of a sampled file
	tsTail       = 256 << 10
	tsClock      = 90000 // PTS and PCR ticks per second
	tsWrap       = 1 << 33
	tsRing       = 64 // time stamps kept per stream and read to find a frame's duration
)

// tsLayout is a packet layout: its size and the offset of the sync byte.
type tsLayout struct{ size, sync int }

var tsLayouts = [...]tsLayout{{188, 0}, {192, 4}, {204, 0}}

// matchTS sees only the first 64 bytes, too few for a second sync byte: it
// takes a sync byte and a sane packet header (no transport error, some
// adaptation or payload) as a TS, and parseTS wants five packets in a row
// before it believes it. MPEG audio named as such is left to the MP3
// parser, which finds its frames after junk.
func matchTS(head []byte, ext string) bool {
	switch ext {
	case ".mp3", ".mp2", ".mp1", ".mpga":
		return false
	}
	for _, l := range tsLayouts {
		if len(head) >= l.sync+4 && head[l.sync] == tsSync && head[l.sync+1]&0x80 == 0 && head[l.sync+3]&0x30 != 0 {
			return true
		}
	}
	return false
}

// tsDetect finds the packet layout of the file starting with b: five sync
// bytes in a row, or as many as b holds whole packets.
func tsDetect(b []byte) (tsLayout, bool) {
	for _, l := range tsLayouts {
		n := min(5, len(b)/l.size)
		if n == 0 {
			continue
		}
		ok := true
		for k := range n {
			if b[k*l.size+l.sync] != tsSync {
				ok = false
				break
			}
		}
		if ok {
			return l, true
		}
	}
	return tsLayout{}, false
}

// tsFrames is the frame syntax of an audio stream, which lets a PES
// holding several frames be split at each frame's own time.
type tsFrames int

const (
	tsNoFrames tsFrames = iota
	tsADTS
	tsMPA // MPEG audio layers 1-3
	tsAC3 // AC-3 and E-AC-3
)

// tsStream is one elementary stream of the PMT and the state of its PES
// in the region being read.
type tsStream struct {
	pid    int
	stream Stream
	frames tsFrames
	sniff  bool // its first PES's payload is still to be looked at

	// The PES being read.
	inPES   bool
	hasTime bool
	pesTime float64 // seconds
	cur     Packet  // the frame (or PES) bytes are being added to
	open    bool
	// The audio frame walk.
	need int     // bytes left of the current frame
	hdr  [8]byte // a frame header cut by a packet boundary
	nhdr int
	idx  int // frames since the PES's time stamp
	lost bool

	mpegSpan  // what the region showed
	ring      [tsRing]int64
	nring     int
	frameTick int64 // a video frame's (or an audio PES's) duration in ticks, 0 unknown
	clock     mpegClock
}

// tsDemux reads transport packets.
type tsDemux struct {
	layout  tsLayout
	buf     []byte
	pmtPID  int // -1 until the PAT names it
	pmtDone bool
	pat     tsSection
	pmt     tsSection
	streams []*tsStream

	base    int64 // the first time stamp seen, in ticks; -1 before
	packets []Packet
	mpegCounts
	pcrMin float64
	pcrMax float64
	hasPCR bool
	// The media time the region's packets span.
	first, last float64
	any         bool
}

func parseTS(s *source, rep *Report) error {
	first := make([]byte, min(s.size, 5*204))
	if _, err := s.ReadAt(first, 0); err != nil {
		return fmt.Errorf("ts head: %w", err)
	}
	l, ok := tsDetect(first)
	if !ok {
		if s.size < 188 {
			return fmt.Errorf("ts: %d bytes, less than a packet: %w", s.size, io.ErrUnexpectedEOF)
		}
		return fmt.Errorf("%w: no run of MPEG-TS sync bytes at the start", ErrUnknownFormat)
	}
	d := &tsDemux{layout: l, buf: make([]byte, tsChunk), pmtPID: -1, base: -1}

	// The PAT and PMT first, then the media from the start again: media
	// packets before the PMT would otherwise be lost.
	// Read in small pieces: the tables usually come first.
	budget := s.budget
	psiEnd := min(s.size, tsPSIMax, budget/4)
	d.buf = d.buf[:tsPSIChunk]
	_, err := d.scan(s, 0, psiEnd, func() bool { return d.pmtDone })
	d.buf = d.buf[:tsChunk]
	if err != nil {
		return err
	}
	if !d.pmtDone {
		return fmt.Errorf("%w: no PAT and PMT in the first %d bytes", ErrCorrupt, psiEnd)
	}
	if len(d.streams) == 0 {
		return fmt.Errorf("%w: the PMT lists no audio or video stream", ErrCorrupt)
	}
	for _, st := range d.streams {
		st.sniff = true
	}
	window := s.window.Seconds()

	if s.size <= s.budget {
		// Within the budget: read it all, every PES counted, exact.
		if _, err := d.region(s, 0, s.size); err != nil {
			return err
		}
		start, end, ok := d.span()
		if !ok || !(end > start) {
			return fmt.Errorf("%w: no two time stamps in %d bytes", ErrCorrupt, s.size)
		}
		d.report(rep, end-start)
		pk := d.sorted()
		m := newPeakMeter(window)
		for _, p := range pk {
			m.add(p)
		}
		rep.BitrateAvg = int64(float64(m.total) * 8 / rep.Duration)
		rep.BitratePeak = m.result(rep.Duration)
		rep.PeakMethod = Exact
		return nil
	}

	return mpegSampled(s, d, rep, budget, tsHead, tsTail, window, tsChunk)
}

// report fills in the streams and the duration.
func (d *tsDemux) report(rep *Report, duration float64) {
	rep.Duration = duration
	for _, st := range d.streams {
		if st.stream.Type == "video" && st.frameTick > 0 {
			st.stream.FrameRate = float64(tsClock) / float64(st.frameTick)
		}
		rep.Streams = append(rep.Streams, st.stream)
	}
}

// sorted closes the region's open packets and returns its packets in time
// order (B-frames come before the frames they follow in time).
func (d *tsDemux) sorted() []Packet {
	for _, st := range d.streams {
		d.closePacket(st)
	}
	return sortPackets(d.packets)
}

// rate is the media rate of the region just read, in bits per second, and
// the media time it spans (see mpegRate).
func (d *tsDemux) rate() (rate, span float64) {
	clocks := make([]*mpegClock, len(d.streams))
	for i, st := range d.streams {
		clocks[i] = &st.clock
	}
	return mpegRate(clocks)
}

// mpegGap is the longest step between two time stamps of a stream taken
// as one run: a bigger one, or a step back, is a discontinuity (a cut, a
// clock reset) and starts the run again.
const mpegGap = 10.0

// span is the earliest start and latest end of the region's media.
func (d *tsDemux) span() (start, end float64, ok bool) {
	d.sorted()
	start, end = math.Inf(1), math.Inf(-1)
	for _, st := range d.streams {
		if !st.seen {
			continue
		}
		st.estimateFrame()
		dur := st.maxDur
		if dur == 0 {
			dur = float64(st.frameTick) / tsClock
		}
		start, end = min(start, st.minT), max(end, st.maxT+dur)
		ok = true
	}
	if !ok && d.hasPCR && d.pcrMax > d.pcrMin {
		return d.pcrMin, d.pcrMax, true
	}
	return start, end, ok
}

// estimateFrame takes a frame's duration from the smallest gap between
// the sorted time stamps of the region's PES.
func (st *tsStream) estimateFrame() {
	r := st.ring[:st.nring]
	slices.Sort(r)
	var best int64
	for i := 1; i < len(r); i++ {
		if g := r[i] - r[i-1]; g > 0 && (best == 0 || g < best) {
			best = g
		}
	}
	if best > 0 && best < 10*tsClock {
		st.frameTick = best
	}
}

// region reads [from, to) as a fresh stretch of the stream: the PES in
// progress at its start are skipped. It returns where a read going on
// would start.
func (d *tsDemux) region(s *source, from, to int64) (int64, error) {
	d.packets = d.packets[:0]
	d.hasPCR, d.any = false, false
	for _, st := range d.streams {
		*st = tsStream{pid: st.pid, stream: st.stream, frames: st.frames, sniff: st.sniff, frameTick: st.frameTick}
	}
	return d.scan(s, from, to, nil)
}

// scan reads the packets in [from, to), finding the sync again wherever it
// is lost, until stop (if set) says so. It returns where it stopped.
func (d *tsDemux) scan(s *source, from, to int64, stop func() bool) (int64, error) {
	ps, so := d.layout.size, d.layout.sync
	synced, pos := false, from
	for to-pos >= int64(ps) {
		n := int(min(int64(len(d.buf)), to-pos))
		final := int64(n) == to-pos
		b := d.buf[:n]
		if _, err := s.ReadAt(b, pos); err != nil {
			return pos, fmt.Errorf("ts packets at %d: %w", pos, err)
		}
		i := 0
		for i+ps <= n {
			if !synced {
				k := tsResync(b[i:], ps, so, final)
				if k < 0 {
					break
				}
				i += k
				synced = true
			}
			if b[i+so] != tsSync {
				synced = false
				i++
				continue
			}
			if err := s.step(); err != nil {
				return pos, err
			}
			d.packet(b[i+so : i+so+188])
			d.scanned += int64(ps)
			i += ps
			if stop != nil && stop() {
				return pos + int64(i), nil
			}
		}
		switch {
		case synced:
			pos += int64(i)
		case final:
			return to, nil
		default: // keep the last packets: a sync there was not yet confirmed
			pos += int64(max(i, n-3*ps, 1))
		}
	}
	return pos, nil
}

// tsResync finds the next packet start in b: a sync byte followed by two
// more a packet apart (or, at the end of the region, as many as b holds).
func tsResync(b []byte, ps, so int, final bool) int {
	for k := 0; k+ps <= len(b); k++ {
		j := bytes.IndexByte(b[k+so:], tsSync)
		if j < 0 {
			return -1
		}
		k += j
		if k+ps > len(b) {
			return -1
		}
		ok, seen := true, 0
		for m := 1; m <= 2 && k+m*ps+so < len(b); m++ {
			if b[k+m*ps+so] != tsSync {
				ok = false
				break
			}
			seen++
		}
		if ok && (seen == 2 || final) {
			return k
		}
	}
	return -1
}

// packet handles one 188-byte transport packet.
func (d *tsDemux) packet(p []byte) {
	if p[1]&0x80 != 0 { // transport_error_indicator
		return
	}
	pid := int(binary.BigEndian.Uint16(p[1:]) & 0x1fff)
	pusi := p[1]&0x40 != 0
	scrambled := p[3]&0xc0 != 0
	afc := p[3] >> 4 & 3
	payload := p[4:]
	if afc&2 != 0 {
		alen := int(p[4])
		if alen > 183 {
			return
		}
		if alen >= 7 && p[5]&0x10 != 0 {
			pcr := int64(p[6])<<25 | int64(p[7])<<17 | int64(p[8])<<9 | int64(p[9])<<1 | int64(p[10])>>7
			t := d.seconds(pcr)
			if !d.hasPCR {
				d.pcrMin, d.pcrMax, d.hasPCR = t, t, true
			}
			d.pcrMin, d.pcrMax = min(d.pcrMin, t), max(d.pcrMax, t)
		}
		payload = p[5+alen:]
	}
	if afc&1 == 0 || scrambled {
		return
	}
	switch {
	case pid == 0 && !d.pmtDone:
		if sec := d.pat.add(payload, pusi); sec != nil {
			d.parsePAT(sec)
		}
	case pid == d.pmtPID && !d.pmtDone:
		if sec := d.pmt.add(payload, pusi); sec != nil {
			d.parsePMT(sec)
		}
	default:
		for _, st := range d.streams {
			if st.pid == pid {
				d.pes(st, pusi, payload)
				return
			}
		}
	}
}

// seconds converts a 33-bit time stamp to seconds after the first one
// seen, across the wrap every 26.5 hours; a stamp up to a minute before
// the first (a B-frame, an audio frame muxed late) is negative.
func (d *tsDemux) seconds(ticks int64) float64 {
	return float64(d.ticks(ticks)) / tsClock
}

func (d *tsDemux) ticks(t int64) int64 {
	if d.base < 0 {
		d.base = t
	}
	delta := (t - d.base) & (tsWrap - 1)
	if delta > tsWrap-60*tsClock {
		delta -= tsWrap
	}
	return delta
}

// tsSection gathers a PSI section from packet payloads.
type tsSection struct {
	buf []byte
	on  bool
}

// add feeds one packet's payload and returns the section once whole.
// Only the first section starting in a packet is read.
func (sec *tsSection) add(p []byte, pusi bool) []byte {
	if pusi {
		if len(p) < 1 || int(p[0]) >= len(p) {
			sec.on = false
			return nil
		}
		p = p[1+int(p[0]):]
		if sec.buf == nil {
			sec.buf = make([]byte, 0, tsMaxSection+3)
		}
		sec.buf, sec.on = sec.buf[:0], true
	}
	if !sec.on {
		return nil
	}
	sec.buf = append(sec.buf, p[:min(len(p), cap(sec.buf)-len(sec.buf))]...)
	if len(sec.buf) < 3 {
		return nil
	}
	n := 3 + int(binary.BigEndian.Uint16(sec.buf[1:])&0x0fff)
	if n > tsMaxSection+3 || n < 12 {
		sec.on = false
		return nil
	}
	if len(sec.buf) < n {
		return nil
	}
	sec.on = false
	if tsCRC(sec.buf[:n]) != 0 {
		return nil
	}
	return sec.buf[:n]
}

// tsCRC is the MPEG-2 CRC-32 (polynomial 0x04C11DB7, not reflected); over
// a whole section, CRC included, it is 0.
func tsCRC(b []byte) uint32 {
	crc := uint32(0xffffffff)
	for _, c := range b {
		crc ^= uint32(c) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// parsePAT takes the PMT of the first program.
func (d *tsDemux) parsePAT(sec []byte) {
	if sec[0] != 0x00 {
		return
	}
	for e := sec[8 : len(sec)-4]; len(e) >= 4; e = e[4:] {
		if binary.BigEndian.Uint16(e) != 0 { // program 0 names the network PID
			d.pmtPID = int(binary.BigEndian.Uint16(e[2:]) & 0x1fff)
			return
		}
	}
}

// parsePMT lists the program's audio and video streams.
func (d *tsDemux) parsePMT(sec []byte) {
	if sec[0] != 0x02 || len(sec) < 16 {
		return
	}
	body := sec[:len(sec)-4]
	pil := int(binary.BigEndian.Uint16(body[10:]) & 0x0fff)
	if 12+pil > len(body) {
		return
	}
	hdmv := tsRegistration(body[12:12+pil]) == "HDMV"
	for e := body[12+pil:]; len(e) >= 5; {
		typ := e[0]
		pid := int(binary.BigEndian.Uint16(e[1:]) & 0x1fff)
		n := min(int(binary.BigEndian.Uint16(e[3:])&0x0fff), len(e)-5)
		desc := e[5 : 5+n]
		e = e[5+n:]
		kind, codec := tsCodec(typ, hdmv, desc)
		if codec == "" || len(d.streams) >= 32 {
			continue
		}
		st := &tsStream{pid: pid, stream: Stream{Type: kind, Codec: codec}}
		switch codec {
		case "aac":
			st.frames = tsADTS
		case "mp1", "mp2", "mp3":
			st.frames = tsMPA
		case "ac3", "eac3":
			st.frames = tsAC3
		}
		d.streams = append(d.streams, st)
	}
	d.pmtDone = true
}

// tsRegistration is the format_identifier of a registration descriptor
// (tag 5) among descriptors.
func tsRegistration(desc []byte) string {
	for len(desc) >= 2 {
		tag, n := desc[0], int(desc[1])
		if 2+n > len(desc) {
			return ""
		}
		if tag == 0x05 && n >= 4 {
			return string(desc[2:6])
		}
		desc = desc[2+n:]
	}
	return ""
}

// tsCodec names a PMT stream as ffprobe does (libavformat/mpegts.c's
// tables: ISO types, Blu-ray's HDMV types when the program is registered
// "HDMV", then ATSC's; private data by registration or DVB descriptor).
// MPEG audio is named by its first frame's layer, MPEG video by whether its
// sequence header has an extension. Subtitles and data give "".
func tsCodec(typ byte, hdmv bool, desc []byte) (kind, codec string) {
	switch typ {
	case 0x01:
		return "video", "mpeg1video"
	case 0x02:
		return "video", "mpeg2video"
	case 0x10:
		return "video", "mpeg4"
	case 0x1b, 0x20:
		return "video", "h264"
	case 0x24:
		return "video", "hevc"
	case 0x42:
		return "video", "cavs"
	case 0xd1:
		return "video", "dirac"
	case 0xea:
		return "video", "vc1"
	case 0x03, 0x04:
		return "audio", "mp3"
	case 0x0f, 0x1c:
		return "audio", "aac"
	case 0x11:
		return "audio", "aac_latm"
	}
	if hdmv {
		switch typ {
		case 0x80:
			return "audio", "pcm_bluray"
		case 0x81:
			return "audio", "ac3"
		case 0x82, 0x85, 0x86, 0xa2:
			return "audio", "dts"
		case 0x83:
			return "audio", "truehd"
		case 0x84, 0xa1:
			return "audio", "eac3"
		}
	}
	switch typ {
	case 0x81:
		return "audio", "ac3"
	case 0x87:
		return "audio", "eac3"
	case 0x8a:
		return "audio", "dts"
	}
	switch tsRegistration(desc) {
	case "AC-3":
		return "audio", "ac3"
	case "EAC3":
		return "audio", "eac3"
	case "Opus":
		return "audio", "opus"
	case "HEVC":
		return "video", "hevc"
	case "VC-1":
		return "video", "vc1"
	case "drac":
		return "video", "dirac"
	}
	for len(desc) >= 2 && 2+int(desc[1]) <= len(desc) {
		switch desc[0] {
		case 0x6a:
			return "audio", "ac3"
		case 0x7a:
			return "audio", "eac3"
		case 0x7b:
			return "audio", "dts"
		}
		desc = desc[2+int(desc[1]):]
	}
	return "", ""
}

// pes handles a packet's payload for an elementary stream.
func (d *tsDemux) pes(st *tsStream, pusi bool, p []byte) {
	if pusi {
		hdr, pts, dts, ok := tsPESHeader(p)
		if !ok {
			d.closePacket(st)
			st.inPES = false
			return
		}
		st.inPES = true
		p = p[hdr:]
		if dts < 0 {
			dts = pts
		}
		if dts >= 0 {
			st.clock.stamp(d.seconds(dts))
		}
		if pts >= 0 {
			t := d.ticks(pts)
			st.pesTime, st.hasTime, st.idx = float64(t)/tsClock, true, 0
			if st.nring < tsRing {
				st.ring[st.nring] = t
				st.nring++
			}
			if st.frames == tsNoFrames {
				d.openPacket(st, st.pesTime, 0)
			}
		}
		if st.lost { // frames start again at a PES
			st.lost, st.need, st.nhdr = false, 0, 0
		}
		if st.sniff {
			st.sniff = !tsSniffVideo(&st.stream, p)
		}
	}
	d.payload += int64(len(p))
	st.clock.bytes += int64(len(p))
	if !st.inPES {
		return // media all the same, for the average and the rate
	}
	if st.frames == tsNoFrames {
		d.addBytes(st, len(p))
		return
	}
	d.walkFrames(st, p)
}

// tsPESHeader reads the PES header at the start of p: its length, PTS
// and DTS (-1 without one). ok is false when p holds no whole PES header.
func tsPESHeader(p []byte) (hdr int, pts, dts int64, ok bool) {
	if len(p) < 6 || p[0] != 0 || p[1] != 0 || p[2] != 1 {
		return 0, -1, -1, false
	}
	switch p[3] { // streams without the optional header
	case 0xbc, 0xbe, 0xbf, 0xf0, 0xf1, 0xf2, 0xf8, 0xff:
		return 6, -1, -1, true
	}
	if len(p) < 9 || p[6]&0xc0 != 0x80 {
		return 0, -1, -1, false
	}
	hdr, pts, dts, ok = pesOptional(p[6:])
	if !ok {
		return 0, -1, -1, false
	}
	return 6 + hdr, pts, dts, true
}

// openPacket starts a packet at time t (closing the one in progress);
// dur is its frame's duration when known.
func (d *tsDemux) openPacket(st *tsStream, t, dur float64) {
	d.closePacket(st)
	st.cur, st.open = Packet{Time: t}, true
	if !d.any {
		d.first, d.last, d.any = t, t, true
	}
	d.first, d.last = min(d.first, t), max(d.last, t)
	st.mark(t, dur)
}

func (d *tsDemux) closePacket(st *tsStream) {
	if st.open && st.cur.Bytes > 0 {
		d.packets = append(d.packets, st.cur)
	}
	st.open = false
}

func (d *tsDemux) addBytes(st *tsStream, n int) {
	if st.open {
		st.cur.Bytes += int64(n)
	}
}

// walkFrames splits an audio PES payload into frames by their headers,
// each counted at its own time, like ffprobe's packets. A frame whose
// header makes no sense stops the walk until the next PES.
func (d *tsDemux) walkFrames(st *tsStream, p []byte) {
	hl := 4
	switch st.frames {
	case tsADTS:
		hl = 7
	case tsAC3:
		hl = 8
	}
	for len(p) > 0 {
		if st.lost {
			d.addBytes(st, len(p))
			return
		}
		if st.need > 0 {
			n := min(len(p), st.need)
			d.addBytes(st, n)
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
		st.nhdr = 0
		size, dur, next := tsFrameHeader(st, st.hdr[:hl])
		if size < hl {
			st.lost = true
			d.addBytes(st, hl)
			continue
		}
		if next && st.hasTime {
			d.openPacket(st, st.pesTime+float64(st.idx)*dur, dur)
			st.idx++
		}
		d.addBytes(st, hl)
		st.need = size - hl
	}
}

// tsFrameHeader reads an audio frame header: the frame's size (0 when the
// header is not one), its duration in seconds, and whether it starts a new
// packet (an E-AC-3 dependent substream belongs to the frame before). The
// first header gives the stream's rate and channels.
func tsFrameHeader(st *tsStream, h []byte) (size int, dur float64, next bool) {
	var rate, channels, samples int
	switch st.frames {
	case tsADTS:
		if h[0] != 0xff || h[1]&0xf6 != 0xf0 {
			return 0, 0, false
		}
		rates := [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
		si := int(h[2] >> 2 & 0xf)
		if si >= len(rates) {
			return 0, 0, false
		}
		rate, channels = rates[si], int(h[2]&1)<<2|int(h[3]>>6)
		size = int(h[3]&3)<<11 | int(h[4])<<3 | int(h[5]>>5)
		samples = 1024 * (int(h[6]&3) + 1)
	case tsMPA:
		f, ok := mpegHeader(h)
		if !ok {
			return 0, 0, false
		}
		rate, channels, size, samples = f.rate, f.channels, f.size, f.samples
		if st.stream.SampleRate == 0 {
			st.stream.Codec = [...]string{"mp1", "mp2", "mp3"}[f.layer-1]
		}
	case tsAC3:
		var ok bool
		size, rate, channels, samples, next, ok = tsAC3Header(h)
		if !ok {
			return 0, 0, false
		}
		if !next {
			return size, 0, false
		}
	}
	if rate == 0 {
		return 0, 0, false
	}
	if st.stream.SampleRate == 0 {
		st.stream.SampleRate, st.stream.Channels = rate, channels
	}
	return size, float64(samples) / float64(rate), true
}

// tsAC3Header reads an AC-3 or E-AC-3 syncframe header (ATSC A/52 5.4.1 and
// E.1.2): size in bytes, sample rate, channels (with the LFE), samples,
// and whether it is an independent frame.
func tsAC3Header(h []byte) (size, rate, channels, samples int, independent, ok bool) {
	if h[0] != 0x0b || h[1] != 0x77 {
		return
	}
	acmodChannels := [...]int{2, 1, 2, 3, 3, 4, 4, 5}
	bsid := h[5] >> 3
	switch {
	case bsid <= 10: // AC-3
		fscod, frmsizecod := int(h[4]>>6), int(h[4]&0x3f)
		if fscod == 3 || frmsizecod >= 38 {
			return
		}
		kbps := [...]int{32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640}[frmsizecod>>1]
		switch fscod {
		case 0:
			rate, size = 48000, kbps*4
		case 1:
			rate, size = 44100, (kbps*96000/44100+frmsizecod&1)*2
		case 2:
			rate, size = 32000, kbps*6
		}
		// acmod, then 2-bit mix levels that depend on it, then lfeon.
		acmod := int(h[6] >> 5)
		bit := 3
		if acmod&1 != 0 && acmod != 1 {
			bit += 2
		}
		if acmod&4 != 0 {
			bit += 2
		}
		if acmod == 2 {
			bit += 2
		}
		lfe := int(binary.BigEndian.Uint16(h[6:]) >> (15 - bit) & 1)
		return size, rate, acmodChannels[acmod] + lfe, 1536, true, true
	case bsid <= 16: // E-AC-3
		strmtyp := h[2] >> 6
		size = (int(binary.BigEndian.Uint16(h[2:])&0x7ff) + 1) * 2
		fscod, nb := int(h[4]>>6), int(h[4]>>4&3)
		blocks := [...]int{1, 2, 3, 6}[nb]
		switch fscod {
		case 3:
			if nb == 3 {
				return
			}
			rate, blocks = [...]int{24000, 22050, 16000}[nb], 6
		default:
			rate = [...]int{48000, 44100, 32000}[fscod]
		}
		acmod, lfe := int(h[4]>>1&7), int(h[4]&1)
		return size, rate, acmodChannels[acmod] + lfe, 256 * blocks, strmtyp != 1, true
	}
	return
}

// tsSniffVideo looks at the start of a video stream's first PES (the rest
// of its first packet): the H.264 SPS or the MPEG video sequence header
// give the picture size. It reports whether it found what it looked for.
func tsSniffVideo(st *Stream, p []byte) bool {
	switch st.Codec {
	case "h264":
		for i := 0; i+4 < len(p); i++ {
			if p[i] == 0 && p[i+1] == 0 && p[i+2] == 1 && p[i+3]&0x1f == 7 {
				st.Width, st.Height = tsH264Size(p[i+4:])
				return true
			}
		}
	case "mpeg1video", "mpeg2video":
		i := bytes.Index(p, []byte{0, 0, 1, 0xb3})
		if i < 0 || i+7 > len(p) {
			return false
		}
		h := p[i+4:]
		st.Width, st.Height = int(h[0])<<4|int(h[1]>>4), int(h[1]&0xf)<<8|int(h[2])
		if bytes.Contains(p[i:], []byte{0, 0, 1, 0xb5}) {
			st.Codec = "mpeg2video"
		} else {
			st.Codec = "mpeg1video"
		}
		return true
	default:
		return true
	}
	return false
}

// tsH264Size reads the picture size from an H.264 sequence parameter set
// (after its NAL header; ITU-T H.264 7.3.2.1.1), cropping applied. A cut or
// odd SPS gives 0, 0.
func tsH264Size(b []byte) (width, height int) {
	// Drop the emulation prevention bytes (00 00 03) of the first bytes.
	var rbsp [256]byte
	n, zeros := 0, 0
	for _, c := range b {
		if n == len(rbsp) {
			break
		}
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		rbsp[n] = c
		n++
	}
	r := tsBits{b: rbsp[:n]}
	profile := r.bits(8)
	r.bits(16) // constraint flags, level
	r.ue()     // seq_parameter_set_id
	chroma := 1
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.ue()
		if chroma == 3 {
			r.bits(1) // separate_colour_plane_flag
		}
		r.ue()              // bit_depth_luma_minus8
		r.ue()              // bit_depth_chroma_minus8
		r.bits(1)           // qpprime_y_zero_transform_bypass_flag
		if r.bits(1) == 1 { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := range lists {
				if r.bits(1) == 0 {
					continue
				}
				size, last, next := 16, 8, 8
				if i >= 6 {
					size = 64
				}
				for range size {
					if next != 0 {
						next = (last + r.se() + 256) % 256
					}
					if next != 0 {
						last = next
					}
				}
			}
		}
	}
	r.ue()          // log2_max_frame_num_minus4
	switch r.ue() { // pic_order_cnt_type
	case 0:
		r.ue()
	case 1:
		r.bits(1)
		r.se()
		r.se()
		for range min(r.ue(), 255) {
			r.se()
		}
	}
	r.ue()    // max_num_ref_frames
	r.bits(1) // gaps_in_frame_num_value_allowed_flag
	w := r.ue() + 1
	h := r.ue() + 1
	frameMBsOnly := r.bits(1)
	if frameMBsOnly == 0 {
		r.bits(1) // mb_adaptive_frame_field_flag
	}
	r.bits(1) // direct_8x8_inference_flag
	width, height = w*16, (2-frameMBsOnly)*h*16
	if r.bits(1) == 1 { // frame_cropping_flag
		cx, cy := 2, 2 // 4:2:0
		switch chroma {
		case 0, 3:
			cx, cy = 1, 1
		case 2:
			cy = 1
		}
		cy *= 2 - frameMBsOnly
		l, rt, t, bt := r.ue(), r.ue(), r.ue(), r.ue()
		width -= cx * (l + rt)
		height -= cy * (t + bt)
	}
	if r.bad || width <= 0 || height <= 0 || width > 16384 || height > 16384 {
		return 0, 0
	}
	return width, height
}

// tsBits reads big-endian bits and Exp-Golomb codes; reading past the
// end sets bad and gives zeros.
type tsBits struct {
	b   []byte
	pos int
	bad bool
}

func (r *tsBits) bits(n int) int {
	v := 0
	for range n {
		if r.pos >= 8*len(r.b) {
			r.bad = true
			return 0
		}
		v = v<<1 | int(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

// ue reads an unsigned Exp-Golomb code (values past 2^20 are taken as
// damage).
func (r *tsBits) ue() int {
	zeros := 0
	for r.bits(1) == 0 {
		zeros++
		if zeros > 20 || r.bad {
			r.bad = true
			return 0
		}
	}
	return 1<<zeros - 1 + r.bits(zeros)
}

func (r *tsBits) se() int {
	v := r.ue()
	if v&1 == 1 {
		return (v + 1) / 2
	}
	return -v / 2
}

// readOn reads on from where a region stopped (see mpegDemuxer).
func (d *tsDemux) readOn(s *source, from, to int64) (int64, error) {
	return d.scan(s, from, to, nil)
}

// counts returns the demuxer's byte counts (see mpegDemuxer).
func (d *tsDemux) counts() *mpegCounts { return &d.mpegCounts }
