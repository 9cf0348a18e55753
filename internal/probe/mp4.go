package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// MP4 and QuickTime (ISO/IEC 14496-12, QTFF): a sequence of boxes (size,
// type, body). The moov box describes every track: its sample tables give
// each sample's size (stsz/stz2) and duration (stts), so the peak is exact
// without touching the media data in mdat, wherever moov sits. Fragmented
// files keep the samples' sizes and durations in the moof boxes (trun),
// which are read header by header, skipping each mdat.
//
// A sample's time is its decode time (stts) shifted by the edit list, as
// ffprobe shows it (composition offsets, ctts, move no bytes between
// windows worth ignoring for pacing). The duration is the span from the
// first sample (or 0, when the edit list starts the presentation after
// an encoder's priming samples) to the end of the last: what ffprobe's
// packet list spans. ffmpeg ignores edit lists in fragments, and so does
// the probe there. stco/co64/stsc (where samples are) are not needed for
// sizes and times and are not read.

const (
	mp4Chunk     = 64 << 10 // bytes of a sample table read at once
	mp4MaxSmall  = 64 << 10 // the most read of a descriptive box (stsd, tags)
	mp4MaxTracks = 16       // media tracks reported and merged; more are ignored
	// mp4MaxPending caps the samples held back to put them in
	// presentation order.
	mp4MaxPending = 1 << 16
)

// mp4Table walks a table of fixed-width entries in the file, reading it in
// chunks so memory stays bounded whatever the table's size.
type mp4Table struct {
	s    *source
	off  int64 // next unread byte
	left int64 // entries not yet returned
	w    int64 // entry width
	buf  []byte
	pos  int
}

// next returns the next entry; ok is false at the end of the table.
func (t *mp4Table) next() (e []byte, ok bool, err error) {
	if t.left <= 0 {
		return nil, false, nil
	}
	if t.pos+int(t.w) > len(t.buf) {
		n := min(t.left*t.w, mp4Chunk/t.w*t.w)
		if int64(cap(t.buf)) < n {
			t.buf = make([]byte, n)
		}
		t.buf = t.buf[:n]
		if err := mp4Read(t.s, t.buf, t.off, "mp4 sample table"); err != nil {
			return nil, false, err
		}
		t.off += n
		t.pos = 0
	}
	e = t.buf[t.pos : t.pos+int(t.w)]
	t.pos += int(t.w)
	t.left--
	return e, true, nil
}

// mp4Track is one audio or video track.
type mp4Track struct {
	id        uint32
	stream    Stream
	timescale uint32
	mediaDur  uint64 // mdhd's duration, in timescale units

	// Where the sample tables are: stts (count, delta) entries, and the
	// sample sizes (stsz: constant or 32-bit entries; stz2: 4, 8 or 16
	// bits per entry).
	sttsOff, sttsN int64
	cttsOff, cttsN int64 // composition offsets (count, offset) entries
	sizeOff        int64
	sizeN          int64
	sizeConst      uint32
	sizeBits       int

	// The edit list: a leading empty edit delays the track (in movie
	// time units); mediaTime is where the presentation starts in the
	// media (-1: no edit list).
	delay     uint64
	mediaTime int64

	// Fragment defaults from trex.
	trexDur, trexSize uint32

	// Running state while samples are fed.
	dts     uint64 // decode time of the next sample, in timescale units
	started bool
}

// shift is the presentation time of decode time 0, in seconds.
func (t *mp4Track) shift(movieScale uint32) float64 {
	sh := 0.0
	if movieScale > 0 {
		sh = float64(t.delay) / float64(movieScale)
	}
	if t.mediaTime > 0 {
		sh -= float64(t.mediaTime) / float64(t.timescale)
	}
	return sh
}

// mp4Movie is what moov says.
type mp4Movie struct {
	timescale  uint32
	tracks     []*mp4Track // media tracks in trak order
	fragmented bool        // moov holds mvex: samples are in moof boxes
}

func matchMP4(head []byte, ext string) bool {
	if len(head) < 8 {
		return false
	}
	size := binary.BigEndian.Uint32(head)
	switch string(head[4:8]) {
	case "ftyp":
		return true
	case "moov", "mdat", "wide", "free", "skip":
		// Old QuickTime files start without ftyp; a plausible box size
		// keeps other formats from matching by chance.
		return size == 0 || size == 1 || size >= 8
	}
	return false
}

// mp4Read fills p from off, turning a short read into io.ErrUnexpectedEOF.
func mp4Read(s *source, p []byte, off int64, what string) error {
	_, err := s.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("%s at %d: %w", what, off, err)
	}
	return nil
}

// mp4Boxes calls fn for each box between off and end: its type, and where
// its body starts and the box ends. At the top level a box may run to the
// end of the file (size 0), and one that runs past it means a truncated
// file; inside a box it means a corrupt one.
func mp4Boxes(s *source, off, end int64, top bool, fn func(typ string, body, end int64) error) error {
	for off < end {
		if err := s.step(); err != nil {
			return err
		}
		if end-off < 8 {
			if top || allZero(s, off, end) {
				return nil // trailing padding
			}
			return fmt.Errorf("%w: mp4: %d stray bytes at %d", ErrCorrupt, end-off, off)
		}
		var h [16]byte
		if err := mp4Read(s, h[:8], off, "mp4 box header"); err != nil {
			return err
		}
		size := uint64(binary.BigEndian.Uint32(h[:4]))
		typ := string(h[4:8])
		hdr := int64(8)
		switch size {
		case 0:
			if !top {
				// QuickTime ends some lists with a 32-bit zero.
				if end-off <= 8 || allZero(s, off, end) {
					return nil
				}
				return fmt.Errorf("%w: mp4: box %q of size 0 inside a box", ErrCorrupt, typ)
			}
			size = uint64(end - off)
		case 1:
			if end-off < 16 {
				return fmt.Errorf("%w: mp4: box %q cut in its size", ErrCorrupt, typ)
			}
			if err := mp4Read(s, h[8:16], off+8, "mp4 box size"); err != nil {
				return err
			}
			size = binary.BigEndian.Uint64(h[8:16])
			hdr = 16
		}
		if size < uint64(hdr) {
			return fmt.Errorf("%w: mp4: box %q at %d of size %d", ErrCorrupt, typ, off, size)
		}
		if size > uint64(end-off) {
			if top {
				return fmt.Errorf("mp4: box %q at %d of %d bytes: %w", typ, off, size, io.ErrUnexpectedEOF)
			}
			return fmt.Errorf("%w: mp4: box %q at %d of %d bytes overruns its parent", ErrCorrupt, typ, off, size)
		}
		if err := fn(typ, off+hdr, off+int64(size)); err != nil {
			return err
		}
		off += int64(size)
	}
	return nil
}

// allZero reports whether the (at most 8) bytes from off to end are zero.
func allZero(s *source, off, end int64) bool {
	if end-off > 8 {
		return false
	}
	var b [8]byte
	if mp4Read(s, b[:end-off], off, "mp4 padding") != nil {
		return false
	}
	return bytes.Count(b[:end-off], []byte{0}) == int(end-off)
}

// mp4Body reads a box body of at most limit bytes (a longer one is cut).
func mp4Body(s *source, body, end int64, limit int64, what string) ([]byte, error) {
	b := make([]byte, min(end-body, limit))
	if err := mp4Read(s, b, body, what); err != nil {
		return nil, err
	}
	return b, nil
}

func parseMP4(s *source, rep *Report) error {
	moovBody, moovEnd := int64(-1), int64(-1)
	var media int64 // bytes in mdat boxes
	err := mp4Boxes(s, 0, s.size, true, func(typ string, body, end int64) error {
		switch {
		case typ == "moov" && moovBody < 0:
			moovBody, moovEnd = body, end
		case typ == "mdat":
			media += end - body
		}
		return nil
	})
	if err != nil {
		return err
	}
	if moovBody < 0 {
		return fmt.Errorf("%w: mp4: no moov box", ErrCorrupt)
	}
	mv, err := mp4Moov(s, moovBody, moovEnd, rep)
	if err != nil {
		return err
	}
	if len(mv.tracks) == 0 {
		return fmt.Errorf("%w: mp4: no audio or video track", ErrCorrupt)
	}
	for _, t := range mv.tracks {
		rep.Streams = append(rep.Streams, t.stream)
	}

	feed := &mp4Feed{meter: newPeakMeter(s.window.Seconds()), start: 1e300, end: -1e300}
	err = mp4Samples(s, mv, feed)
	if err == nil && mv.fragmented {
		err = mp4Fragments(s, mv, feed)
	}
	if errors.Is(err, ErrBudget) && !mv.fragmented {
		// Too many samples to scan (a day-long audiobook): the headers'
		// durations and the size of mdat give the average, which stands
		// in for the peak.
		return mp4Nominal(mv, media, rep, err)
	}
	if err != nil {
		return err
	}
	feed.flush()
	if feed.n == 0 {
		return fmt.Errorf("%w: mp4: no samples", ErrCorrupt)
	}
	rep.Duration = feed.end - max(feed.start, 0)
	if !(rep.Duration > 0) {
		return fmt.Errorf("%w: mp4: duration %v", ErrCorrupt, rep.Duration)
	}
	// A fuzzed file can claim gigabytes in a nanosecond; beyond any real
	// bitrate the figures would overflow.
	if avg := float64(feed.meter.total) * 8 / rep.Duration; avg > 1e15 {
		return fmt.Errorf("%w: mp4: %d bytes in %v s", ErrCorrupt, feed.meter.total, rep.Duration)
	}
	rep.BitrateAvg = int64(float64(feed.meter.total) * 8 / rep.Duration)
	rep.BitratePeak = feed.meter.result(rep.Duration)
	rep.PeakMethod = Exact
	return nil
}

// mp4Nominal reports the duration from the media headers (less the
// priming samples an edit list skips) and the average over the mdat
// boxes, for a file whose samples the budget cannot scan; budgetErr is
// returned if the headers state no duration.
func mp4Nominal(mv *mp4Movie, media int64, rep *Report, budgetErr error) error {
	var d float64
	for _, t := range mv.tracks {
		dur := float64(t.mediaDur) / float64(t.timescale)
		if t.mediaTime > 0 {
			dur -= float64(t.mediaTime) / float64(t.timescale)
		}
		d = max(d, dur)
	}
	if !(d > 0) || math.IsInf(d, 0) || float64(media)*8/d > 1e15 {
		return budgetErr
	}
	rep.Duration = d
	rep.BitrateAvg = int64(float64(media) * 8 / d)
	rep.BitratePeak = rep.BitrateAvg
	rep.PeakMethod = Nominal
	return nil
}

// mp4Feed collects the samples: the peak meter, and the span of
// presentation time they cover. Samples come in decode order; a heap puts
// them in presentation order (B-frames come after the frames they refer
// to), releasing those no later sample can precede. Samples at the same
// time are one packet to the meter (no window can split them), so a table
// of zero durations cannot pile them up in its queue.
type mp4Feed struct {
	meter      *peakMeter
	pending    mp4Pending
	last       Packet
	held       bool
	start, end float64
	n          int64
}

// push adds a sample to the heap; over the cap the earliest goes to the
// meter at once.
func (f *mp4Feed) push(p mp4Pend) {
	f.pending.push(p)
	if len(f.pending) > mp4MaxPending {
		f.add(f.pending.pop())
	}
}

// release feeds the samples presented up to mark.
func (f *mp4Feed) release(mark float64) {
	for len(f.pending) > 0 && f.pending[0].time <= mark {
		f.add(f.pending.pop())
	}
}

func (f *mp4Feed) add(p mp4Pend) {
	t, dur, size := p.time, p.dur, p.size
	switch {
	case f.held && f.last.Time == t:
		f.last.Bytes += size
	default:
		if f.held {
			f.meter.add(f.last)
		}
		f.last, f.held = Packet{Time: t, Bytes: size}, true
	}
	f.start = min(f.start, t)
	f.end = max(f.end, t+dur)
	f.n++
}

// flush feeds every sample left to the meter.
func (f *mp4Feed) flush() {
	f.release(math.Inf(1))
	if f.held {
		f.meter.add(f.last)
		f.held = false
	}
}

// mp4Moov reads the movie header, the tracks and the tags.
func mp4Moov(s *source, body, end int64, rep *Report) (*mp4Movie, error) {
	mv := &mp4Movie{}
	var all []*mp4Track // every track, media or not, for trex
	err := mp4Boxes(s, body, end, false, func(typ string, body, end int64) error {
		switch typ {
		case "mvhd":
			b, err := mp4Body(s, body, end, 32, "mp4 mvhd")
			if err != nil {
				return err
			}
			switch {
			case len(b) >= 16 && b[0] == 0:
				mv.timescale = binary.BigEndian.Uint32(b[12:])
			case len(b) >= 24 && b[0] == 1:
				mv.timescale = binary.BigEndian.Uint32(b[20:])
			}
		case "trak":
			t, media, err := mp4Trak(s, body, end)
			if err != nil {
				return err
			}
			all = append(all, t)
			if media && len(mv.tracks) < mp4MaxTracks {
				mv.tracks = append(mv.tracks, t)
			}
		case "mvex":
			mv.fragmented = true
			return mp4Boxes(s, body, end, false, func(typ string, body, end int64) error {
				if typ != "trex" {
					return nil
				}
				b, err := mp4Body(s, body, end, 24, "mp4 trex")
				if err != nil || len(b) < 24 {
					return err
				}
				id := binary.BigEndian.Uint32(b[4:])
				for _, t := range all {
					if t.id == id {
						t.trexDur = binary.BigEndian.Uint32(b[12:])
						t.trexSize = binary.BigEndian.Uint32(b[16:])
					}
				}
				return nil
			})
		case "udta":
			return mp4Udta(s, body, end, &rep.Tags, &rep.Cover)
		case "meta":
			return mp4Meta(s, body, end, &rep.Tags, &rep.Cover)
		}
		return nil
	})
	return mv, err
}

// mp4Trak reads one track; media is false for tracks that are neither
// audio nor video (text, timecode, hint).
func mp4Trak(s *source, body, end int64) (t *mp4Track, media bool, err error) {
	t = &mp4Track{mediaTime: -1}
	var handler string
	var stsdB []byte
	var walk func(typ string, body, end int64) error
	walk = func(typ string, body, end int64) error {
		switch typ {
		case "mdia", "minf", "stbl", "edts":
			return mp4Boxes(s, body, end, false, walk)
		case "tkhd":
			b, err := mp4Body(s, body, end, 24, "mp4 tkhd")
			if err != nil {
				return err
			}
			switch {
			case len(b) >= 16 && b[0] == 0:
				t.id = binary.BigEndian.Uint32(b[12:])
			case len(b) >= 24 && b[0] == 1:
				t.id = binary.BigEndian.Uint32(b[20:])
			}
		case "elst":
			return mp4Elst(s, t, body, end)
		case "mdhd":
			b, err := mp4Body(s, body, end, 32, "mp4 mdhd")
			if err != nil {
				return err
			}
			switch {
			case len(b) >= 20 && b[0] == 0:
				t.timescale = binary.BigEndian.Uint32(b[12:])
				t.mediaDur = uint64(binary.BigEndian.Uint32(b[16:]))
			case len(b) >= 32 && b[0] == 1:
				t.timescale = binary.BigEndian.Uint32(b[20:])
				t.mediaDur = binary.BigEndian.Uint64(b[24:])
			}
		case "hdlr":
			b, err := mp4Body(s, body, end, 12, "mp4 hdlr")
			if err != nil {
				return err
			}
			// QuickTime's minf holds a second hdlr, of the data
			// reference ("dhlr"): the media's is the one that counts.
			if len(b) >= 12 && string(b[4:8]) != "dhlr" {
				handler = string(b[8:12])
			}
		case "stsd":
			b, err := mp4Body(s, body, end, mp4MaxSmall, "mp4 stsd")
			if err != nil {
				return err
			}
			stsdB = b
		case "stts":
			n, err := mp4TableHeader(s, body, end, 8, "stts")
			if err != nil {
				return err
			}
			t.sttsOff, t.sttsN = body+8, n
		case "ctts":
			n, err := mp4TableHeader(s, body, end, 8, "ctts")
			if err != nil {
				return err
			}
			t.cttsOff, t.cttsN = body+8, n
		case "stsz":
			var h [12]byte
			if end-body < 12 {
				return fmt.Errorf("%w: mp4: short stsz", ErrCorrupt)
			}
			if err := mp4Read(s, h[:], body, "mp4 stsz"); err != nil {
				return err
			}
			t.sizeConst = binary.BigEndian.Uint32(h[4:])
			t.sizeN = int64(binary.BigEndian.Uint32(h[8:]))
			t.sizeOff, t.sizeBits = body+12, 32
			if t.sizeConst == 0 && t.sizeN > (end-body-12)/4 {
				return fmt.Errorf("%w: mp4: stsz of %d samples in %d bytes", ErrCorrupt, t.sizeN, end-body)
			}
		case "stz2":
			var h [12]byte
			if end-body < 12 {
				return fmt.Errorf("%w: mp4: short stz2", ErrCorrupt)
			}
			if err := mp4Read(s, h[:], body, "mp4 stz2"); err != nil {
				return err
			}
			bits := int(h[7])
			if bits != 4 && bits != 8 && bits != 16 {
				return fmt.Errorf("%w: mp4: stz2 field size %d", ErrCorrupt, bits)
			}
			t.sizeConst, t.sizeBits = 0, bits
			t.sizeN = int64(binary.BigEndian.Uint32(h[8:]))
			t.sizeOff = body + 12
			if (t.sizeN*int64(bits)+7)/8 > end-body-12 {
				return fmt.Errorf("%w: mp4: stz2 of %d samples in %d bytes", ErrCorrupt, t.sizeN, end-body)
			}
		}
		return nil
	}
	if err := mp4Boxes(s, body, end, false, walk); err != nil {
		return nil, false, err
	}
	switch handler {
	case "soun":
		t.stream.Type = "audio"
	case "vide":
		t.stream.Type = "video"
	default:
		return t, false, nil
	}
	if t.timescale == 0 {
		return nil, false, fmt.Errorf("%w: mp4: track %d has timescale 0", ErrCorrupt, t.id)
	}
	mp4SampleEntry(stsdB, &t.stream)
	if t.stream.Type == "audio" && t.stream.SampleRate == 0 {
		t.stream.SampleRate = int(t.timescale)
	}
	if t.stream.Type == "video" && t.sttsN == 1 {
		// A constant frame duration states the frame rate.
		var b [8]byte
		if err := mp4Read(s, b[:], t.sttsOff, "mp4 stts"); err != nil {
			return nil, false, err
		}
		if d := binary.BigEndian.Uint32(b[4:]); d > 0 {
			t.stream.FrameRate = float64(t.timescale) / float64(d)
		}
	}
	return t, true, nil
}

// mp4TableHeader reads the entry count of a full box holding a table of
// entries of w bytes, checking that the box can hold them.
func mp4TableHeader(s *source, body, end, w int64, what string) (int64, error) {
	if end-body < 8 {
		return 0, fmt.Errorf("%w: mp4: short %s", ErrCorrupt, what)
	}
	var h [8]byte
	if err := mp4Read(s, h[:], body, "mp4 "+what); err != nil {
		return 0, err
	}
	n := int64(binary.BigEndian.Uint32(h[4:]))
	if n > (end-body-8)/w {
		return 0, fmt.Errorf("%w: mp4: %s of %d entries in %d bytes", ErrCorrupt, what, n, end-body)
	}
	return n, nil
}

// mp4Elst reads an edit list: leading empty edits delay the track; the
// first real edit says where in the media the presentation starts (an
// encoder's priming samples come before it).
func mp4Elst(s *source, t *mp4Track, body, end int64) error {
	var h [8]byte
	if end-body < 8 {
		return fmt.Errorf("%w: mp4: short elst", ErrCorrupt)
	}
	if err := mp4Read(s, h[:], body, "mp4 elst"); err != nil {
		return err
	}
	w := int64(12)
	if h[0] == 1 {
		w = 20
	}
	n := int64(binary.BigEndian.Uint32(h[4:]))
	if n > (end-body-8)/w {
		return fmt.Errorf("%w: mp4: elst of %d entries in %d bytes", ErrCorrupt, n, end-body)
	}
	tab := mp4Table{s: s, off: body + 8, left: min(n, 64), w: w}
	for {
		if err := s.step(); err != nil {
			return err
		}
		e, ok, err := tab.next()
		if err != nil || !ok {
			return err
		}
		var dur uint64
		var mt int64
		if w == 20 {
			dur, mt = binary.BigEndian.Uint64(e), int64(binary.BigEndian.Uint64(e[8:]))
		} else {
			dur, mt = uint64(binary.BigEndian.Uint32(e)), int64(int32(binary.BigEndian.Uint32(e[4:])))
		}
		if mt < 0 {
			t.delay += dur
			continue
		}
		t.mediaTime = mt
		return nil
	}
}

// mp4SampleEntry reads the codec and its parameters from the first entry
// of an stsd body.
func mp4SampleEntry(b []byte, st *Stream) {
	// Full box header, entry count, then the entry: size, format.
	if len(b) < 16 {
		st.Codec = "unknown"
		return
	}
	size := int(binary.BigEndian.Uint32(b[8:]))
	fourcc := string(b[12:16])
	e := b[16:]
	if size >= 16 && size-8 <= len(e) {
		e = e[:size-8]
	}
	st.Codec = mp4Codec(fourcc, nil)
	switch st.Type {
	case "audio":
		// SampleEntry (6 reserved, data reference index), then the sound
		// description: version, revision, vendor, then for versions 0
		// and 1 channels, sample size, compression id, packet size and
		// the rate as 16.16; version 2 has a float64 rate and a 32-bit
		// channel count.
		if len(e) < 28 {
			return
		}
		version := binary.BigEndian.Uint16(e[8:])
		children := 28
		switch version {
		case 0, 1:
			st.Channels = int(binary.BigEndian.Uint16(e[16:]))
			st.SampleRate = int(binary.BigEndian.Uint32(e[24:]) >> 16)
			if version == 1 {
				children = 44
			}
		case 2:
			if len(e) < 64 {
				return
			}
			rate := math.Float64frombits(binary.BigEndian.Uint64(e[32:]))
			if rate > 0 && rate < 1e7 {
				st.SampleRate = int(rate)
			}
			st.Channels = int(binary.BigEndian.Uint32(e[40:]))
			children = 64
		}
		if children <= len(e) {
			if es, ok := mp4FindESDS(e[children:], 0); ok {
				st.Codec = mp4Codec(fourcc, &es.oti)
				// Encoders write 2 channels into MP4's sound
				// description whatever the stream; the decoder's
				// config is what ffprobe reports.
				if st.Codec == "aac" {
					if rate, ch := mp4AACConfig(es.info); rate > 0 && ch > 0 {
						st.SampleRate, st.Channels = rate, ch
					}
				}
			}
		}
		if fourcc == "alac" && children <= len(e) {
			// The alac box's config holds the real rate (the sound
			// description's 16.16 field overflows above 65,535 Hz).
			if c := mp4Child(e[children:], "alac"); len(c) >= 28 {
				st.Channels = int(c[13])
				st.SampleRate = int(binary.BigEndian.Uint32(c[24:]))
			}
		}
	case "video":
		// SampleEntry, then 16 bytes of predefined and reserved fields,
		// width and height.
		if len(e) >= 28 {
			st.Width = int(binary.BigEndian.Uint16(e[24:]))
			st.Height = int(binary.BigEndian.Uint16(e[26:]))
		}
		if len(e) > 78 {
			if es, ok := mp4FindESDS(e[78:], 0); ok {
				st.Codec = mp4Codec(fourcc, &es.oti)
			}
		}
	}
}

// mp4Child returns the body of the first child box of type typ in b.
func mp4Child(b []byte, typ string) []byte {
	for len(b) >= 8 {
		size := int(binary.BigEndian.Uint32(b))
		if size < 8 || size > len(b) {
			return nil
		}
		if string(b[4:8]) == typ {
			return b[8:size]
		}
		b = b[size:]
	}
	return nil
}

// mp4ESDS is what an esds box says: the objectTypeIndication and the
// decoder specific info (for AAC, its AudioSpecificConfig).
type mp4ESDS struct {
	oti  byte
	info []byte
}

// mp4FindESDS finds an esds box among the child boxes in b (QuickTime
// nests it in a wave box).
func mp4FindESDS(b []byte, depth int) (mp4ESDS, bool) {
	for len(b) >= 8 && depth < 4 {
		size := int(binary.BigEndian.Uint32(b))
		if size < 8 || size > len(b) {
			return mp4ESDS{}, false
		}
		switch string(b[4:8]) {
		case "esds":
			return mp4ParseESDS(b[8:size])
		case "wave":
			if es, ok := mp4FindESDS(b[8:size], depth+1); ok {
				return es, true
			}
		}
		b = b[size:]
	}
	return mp4ESDS{}, false
}

// mp4Descriptor splits an MPEG-4 descriptor (ISO/IEC 14496-1): a tag, a
// length of up to four 7-bit groups, the body.
func mp4Descriptor(b []byte) (tag byte, body []byte, ok bool) {
	if len(b) < 2 {
		return 0, nil, false
	}
	tag = b[0]
	n, i := 0, 1
	for ; i < len(b) && i <= 4; i++ {
		n = n<<7 | int(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			i++
			break
		}
	}
	if i > len(b) {
		return 0, nil, false
	}
	body = b[i:]
	if n < len(body) {
		body = body[:n]
	}
	return tag, body, true
}

// mp4ParseESDS reads an esds body: version and flags, then an
// ES_Descriptor (tag 3) holding a DecoderConfigDescriptor (tag 4: the
// objectTypeIndication, stream type, buffer size, bitrates) holding the
// DecoderSpecificInfo (tag 5).
func mp4ParseESDS(b []byte) (mp4ESDS, bool) {
	if len(b) < 4 {
		return mp4ESDS{}, false
	}
	tag, es, ok := mp4Descriptor(b[4:])
	if !ok || tag != 3 || len(es) < 3 {
		return mp4ESDS{}, false
	}
	flags := es[2]
	es = es[3:]
	if flags&0x80 != 0 {
		es = es[min(2, len(es)):]
	}
	if flags&0x40 != 0 && len(es) > 0 {
		es = es[min(1+int(es[0]), len(es)):]
	}
	if flags&0x20 != 0 {
		es = es[min(2, len(es)):]
	}
	tag, dc, ok := mp4Descriptor(es)
	if !ok || tag != 4 || len(dc) < 1 {
		return mp4ESDS{}, false
	}
	out := mp4ESDS{oti: dc[0]}
	if len(dc) > 13 {
		if tag, info, ok := mp4Descriptor(dc[13:]); ok && tag == 5 {
			out.info = info
		}
	}
	return out, true
}

// mp4AACConfig reads the sample rate and channel count of an
// AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1): 5 bits of object type
// (31 escapes to 6 more), 4 bits of frequency index (15: 24 explicit
// bits), 4 bits of channel configuration. Zero where it does not say.
func mp4AACConfig(b []byte) (rate, channels int) {
	var acc uint64
	for i := range min(len(b), 8) {
		acc |= uint64(b[i]) << (56 - 8*i)
	}
	avail := min(len(b), 8) * 8
	pos := 0
	read := func(n int) (int, bool) {
		if pos+n > avail {
			return 0, false
		}
		v := int(acc << pos >> (64 - n))
		pos += n
		return v, true
	}
	ot, ok := read(5)
	if ok && ot == 31 {
		_, ok = read(6)
	}
	fi, ok2 := read(4)
	if !ok || !ok2 {
		return 0, 0
	}
	rates := [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
	switch {
	case fi == 15:
		rate, _ = read(24)
	case fi < len(rates):
		rate = rates[fi]
	}
	ch, _ := read(4)
	switch {
	case ch >= 1 && ch <= 6:
		channels = ch
	case ch == 7:
		channels = 8
	}
	return rate, channels
}

// mp4Codec names a sample entry's codec as ffprobe does; oti is the esds
// objectTypeIndication when there is one.
func mp4Codec(fourcc string, oti *byte) string {
	if oti != nil {
		switch *oti {
		case 0x40, 0x66, 0x67, 0x68:
			return "aac"
		case 0x69, 0x6B:
			return "mp3"
		case 0x20:
			return "mpeg4"
		case 0x21:
			return "h264"
		case 0xA5:
			return "ac3"
		case 0xA6:
			return "eac3"
		case 0xDD:
			return "vorbis"
		}
	}
	switch fourcc {
	case "mp4a":
		return "aac"
	case "alac":
		return "alac"
	case "avc1", "avc3":
		return "h264"
	case "hvc1", "hev1":
		return "hevc"
	case "mp4v":
		return "mpeg4"
	case "s263", "h263":
		return "h263"
	case "samr":
		return "amr_nb"
	case "sawb":
		return "amr_wb"
	case "Opus":
		return "opus"
	case "fLaC":
		return "flac"
	case "ac-3":
		return "ac3"
	case "ec-3":
		return "eac3"
	case ".mp3":
		return "mp3"
	case "av01":
		return "av1"
	case "vp09":
		return "vp9"
	case "jpeg":
		return "mjpeg"
	case "sowt":
		return "pcm_s16le"
	case "twos":
		return "pcm_s16be"
	}
	return strings.TrimSpace(strings.ToLower(fourcc))
}

// mp4Sizes walks a track's sample sizes.
type mp4Sizes struct {
	tab     mp4Table
	konst   uint32
	bits    int
	left    int64
	pending int // stz2 4-bit: the second nibble of the last byte, or -1
}

func newMP4Sizes(s *source, t *mp4Track) *mp4Sizes {
	z := &mp4Sizes{konst: t.sizeConst, bits: t.sizeBits, left: t.sizeN, pending: -1}
	if t.sizeConst == 0 {
		w, n := int64(t.sizeBits/8), t.sizeN
		if t.sizeBits == 4 {
			w, n = 1, (t.sizeN+1)/2
		}
		z.tab = mp4Table{s: s, off: t.sizeOff, left: n, w: w}
	}
	return z
}

func (z *mp4Sizes) next() (int64, bool, error) {
	if z.left <= 0 {
		return 0, false, nil
	}
	z.left--
	if z.konst != 0 {
		return int64(z.konst), true, nil
	}
	if z.pending >= 0 {
		v := z.pending
		z.pending = -1
		return int64(v), true, nil
	}
	e, ok, err := z.tab.next()
	if err != nil || !ok {
		return 0, false, err
	}
	switch z.bits {
	case 4:
		z.pending = int(e[0] & 15)
		return int64(e[0] >> 4), true, nil
	case 8:
		return int64(e[0]), true, nil
	case 16:
		return int64(binary.BigEndian.Uint16(e)), true, nil
	}
	return int64(binary.BigEndian.Uint32(e)), true, nil
}

// mp4Cursor walks one track's samples in decode order.
type mp4Cursor struct {
	s     *source
	t     *mp4Track
	sizes *mp4Sizes
	stts  mp4Table
	run   uint32 // samples left in the current stts entry
	delta uint32
	ctts  mp4Table
	crun  uint32 // samples left in the current ctts entry
	cto   int32  // their composition offset
	shift float64
	scale float64
	dtime float64 // the current sample: decode and presentation time,
	time  float64 // duration, size
	dur   float64
	size  int64
	ok    bool
}

// advance moves to the next sample; ok turns false after the last.
func (c *mp4Cursor) advance() error {
	size, ok, err := c.sizes.next()
	if err != nil || !ok {
		c.ok = false
		return err
	}
	for c.run == 0 {
		if err := c.s.step(); err != nil {
			return err
		}
		e, ok, err := c.stts.next()
		if err != nil {
			return err
		}
		if !ok {
			// Samples past the durations table last nothing.
			c.run, c.delta = 1<<32-1, 0
			break
		}
		c.run, c.delta = binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
	}
	c.run--
	for c.crun == 0 {
		if err := c.s.step(); err != nil {
			return err
		}
		e, ok, err := c.ctts.next()
		if err != nil {
			return err
		}
		if !ok {
			c.crun, c.cto = 1<<32-1, 0
			break
		}
		// Version 0 offsets are unsigned, but encoders (and ffmpeg)
		// treat them as signed.
		c.crun, c.cto = binary.BigEndian.Uint32(e), int32(binary.BigEndian.Uint32(e[4:]))
	}
	c.crun--
	c.dtime = float64(c.t.dts)/c.scale + c.shift
	c.time = (float64(c.t.dts)+float64(c.cto))/c.scale + c.shift
	c.dur = float64(c.delta) / c.scale
	c.size = size
	c.t.dts += uint64(c.delta)
	c.ok = true
	return nil
}

// mp4Samples feeds the samples of moov's sample tables, merged across
// tracks in decode order. A sample is presented no earlier than it is
// decoded, so those presented before every track's next decode time are
// in their final order.
func mp4Samples(s *source, mv *mp4Movie, feed *mp4Feed) error {
	var cs []*mp4Cursor
	for _, t := range mv.tracks {
		c := &mp4Cursor{
			s: s, t: t, sizes: newMP4Sizes(s, t), stts: mp4Table{s: s, off: t.sttsOff, left: t.sttsN, w: 8},
			ctts:  mp4Table{s: s, off: t.cttsOff, left: t.cttsN, w: 8},
			shift: t.shift(mv.timescale), scale: float64(t.timescale),
		}
		if err := c.advance(); err != nil {
			return err
		}
		if c.ok {
			cs = append(cs, c)
		}
	}
	for len(cs) > 0 {
		if err := s.step(); err != nil {
			return err
		}
		i := 0
		for j, c := range cs {
			if c.dtime < cs[i].dtime {
				i = j
			}
		}
		c := cs[i]
		feed.push(mp4Pend{time: c.time, dur: c.dur, size: c.size})
		c.t.started = true
		if err := c.advance(); err != nil {
			return err
		}
		if !c.ok {
			cs = slices.Delete(cs, i, i+1)
		}
		if len(cs) > 0 {
			mark := cs[0].dtime
			for _, c := range cs[1:] {
				mark = min(mark, c.dtime)
			}
			feed.release(mark)
		}
	}
	return nil
}

// mp4Fragments walks the moof boxes of a fragmented file, feeding each
// track fragment's samples (trun) with the defaults of tfhd and trex.
// Samples wait in the feed's heap until every track has reached their
// time (a track that stops early holds them back only up to the heap's
// cap).
func mp4Fragments(s *source, mv *mp4Movie, feed *mp4Feed) error {
	release := func() {
		mark := math.Inf(1)
		for _, t := range mv.tracks {
			if t.started {
				mark = min(mark, float64(t.dts)/float64(t.timescale))
			}
		}
		feed.release(mark)
	}
	byID := func(id uint32) *mp4Track {
		for _, t := range mv.tracks {
			if t.id == id {
				return t
			}
		}
		return nil
	}
	return mp4Boxes(s, 0, s.size, true, func(typ string, body, end int64) error {
		if typ != "moof" {
			return nil
		}
		err := mp4Boxes(s, body, end, false, func(typ string, body, end int64) error {
			if typ != "traf" {
				return nil
			}
			var t *mp4Track
			var defDur, defSize uint32
			return mp4Boxes(s, body, end, false, func(typ string, body, end int64) error {
				switch typ {
				case "tfhd":
					b, err := mp4Body(s, body, end, 40, "mp4 tfhd")
					if err != nil {
						return err
					}
					if len(b) < 8 {
						return fmt.Errorf("%w: mp4: short tfhd", ErrCorrupt)
					}
					flags := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
					t = byID(binary.BigEndian.Uint32(b[4:]))
					if t == nil {
						return nil
					}
					defDur, defSize = t.trexDur, t.trexSize
					p := 8
					field := func(bit uint32, n int) (uint32, bool) {
						if flags&bit == 0 {
							return 0, false
						}
						if p+n > len(b) {
							p = len(b) + 1
							return 0, false
						}
						v := uint32(0)
						if n == 4 {
							v = binary.BigEndian.Uint32(b[p:])
						}
						p += n
						return v, true
					}
					field(0x1, 8) // base data offset
					field(0x2, 4) // sample description index
					if v, ok := field(0x8, 4); ok {
						defDur = v
					}
					if v, ok := field(0x10, 4); ok {
						defSize = v
					}
					if p > len(b) {
						return fmt.Errorf("%w: mp4: short tfhd", ErrCorrupt)
					}
				case "tfdt":
					if t == nil {
						return nil
					}
					b, err := mp4Body(s, body, end, 12, "mp4 tfdt")
					if err != nil {
						return err
					}
					switch {
					case len(b) >= 12 && b[0] == 1:
						t.dts = binary.BigEndian.Uint64(b[4:])
					case len(b) >= 8:
						t.dts = uint64(binary.BigEndian.Uint32(b[4:]))
					}
				case "trun":
					if t == nil {
						return nil
					}
					var h [8]byte
					if end-body < 8 {
						return fmt.Errorf("%w: mp4: short trun", ErrCorrupt)
					}
					if err := mp4Read(s, h[:], body, "mp4 trun"); err != nil {
						return err
					}
					flags := uint32(h[1])<<16 | uint32(h[2])<<8 | uint32(h[3])
					n := int64(binary.BigEndian.Uint32(h[4:]))
					off := body + 8
					if flags&0x1 != 0 {
						off += 4
					}
					if flags&0x4 != 0 {
						off += 4
					}
					var w int64
					for _, bit := range []uint32{0x100, 0x200, 0x400, 0x800} {
						if flags&bit != 0 {
							w += 4
						}
					}
					if off > end || w > 0 && n > (end-off)/w {
						return fmt.Errorf("%w: mp4: trun of %d samples in %d bytes", ErrCorrupt, n, end-body)
					}
					tab := mp4Table{s: s, off: off, left: n, w: max(w, 1)}
					// ffmpeg does not apply edit lists to fragments,
					// and the oracle is ffprobe.
					scale := float64(t.timescale)
					for range n {
						if err := s.step(); err != nil {
							return err
						}
						dur, size := defDur, defSize
						var cto int32
						if w > 0 {
							e, _, err := tab.next()
							if err != nil {
								return err
							}
							if flags&0x100 != 0 {
								dur, e = binary.BigEndian.Uint32(e), e[4:]
							}
							if flags&0x200 != 0 {
								size, e = binary.BigEndian.Uint32(e), e[4:]
							}
							if flags&0x400 != 0 {
								e = e[4:]
							}
							if flags&0x800 != 0 {
								cto = int32(binary.BigEndian.Uint32(e))
							}
						}
						feed.push(mp4Pend{
							time: (float64(t.dts) + float64(cto)) / scale, dur: float64(dur) / scale, size: int64(size),
						})
						t.dts += uint64(dur)
						t.started = true
					}
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		release()
		return nil
	})
}

// mp4Pend is a sample waiting to be fed in presentation order.
type mp4Pend struct {
	time, dur float64
	size      int64
}

// mp4Pending is a min-heap of samples by time, so holding samples back
// costs a logarithm per sample, not a sort per fragment. (container/heap
// would box every sample in an interface: an allocation each.)
type mp4Pending []mp4Pend

func (h *mp4Pending) push(p mp4Pend) {
	*h = append(*h, p)
	q := *h
	for i := len(q) - 1; i > 0; {
		up := (i - 1) / 2
		if q[up].time <= q[i].time {
			break
		}
		q[up], q[i] = q[i], q[up]
		i = up
	}
}

func (h *mp4Pending) pop() mp4Pend {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	for i := 0; ; {
		l, small := 2*i+1, i
		if l < n && q[l].time < q[small].time {
			small = l
		}
		if l+1 < n && q[l+1].time < q[small].time {
			small = l + 1
		}
		if small == i {
			break
		}
		q[i], q[small] = q[small], q[i]
		i = small
	}
	*h = q
	return top
}

// mp4Udta reads a user data box: iTunes tags in meta, or QuickTime's own
// text items (©nam and friends: a 16-bit length, a language, the text).
func mp4Udta(s *source, body, end int64, tags *Tags, cover **Cover) error {
	return mp4Boxes(s, body, end, false, func(typ string, body, end int64) error {
		if typ == "meta" {
			return mp4Meta(s, body, end, tags, cover)
		}
		if len(typ) != 4 || typ[0] != 0xA9 {
			return nil
		}
		b, err := mp4Body(s, body, end, 4096, "mp4 user data")
		if err != nil || len(b) < 4 {
			return err
		}
		n := int(binary.BigEndian.Uint16(b))
		if 4+n > len(b) {
			return nil // not QuickTime text
		}
		mp4SetTag(tags, typ, []string{string(b[4 : 4+n])})
		return nil
	})
}

// mp4Meta reads a meta box (a full box in MP4, a plain one in QuickTime)
// and its ilst.
func mp4Meta(s *source, body, end int64, tags *Tags, cover **Cover) error {
	if end-body >= 12 {
		var h [12]byte
		if err := mp4Read(s, h[:], body, "mp4 meta"); err != nil {
			return err
		}
		// Version and flags come first, unless a child box does.
		if string(h[4:8]) != "hdlr" {
			body += 4
		}
	}
	return mp4Boxes(s, body, end, false, func(typ string, body, end int64) error {
		if typ != "ilst" {
			return nil
		}
		return mp4Boxes(s, body, end, false, func(key string, body, end int64) error {
			return mp4Item(s, key, body, end, tags, cover)
		})
	})
}

// mp4Item reads one ilst item: data boxes (type indicator, locale, value).
// Cover data are located, not read.
func mp4Item(s *source, key string, body, end int64, tags *Tags, cover **Cover) error {
	var vals []string
	err := mp4Boxes(s, body, end, false, func(typ string, body, end int64) error {
		if typ != "data" || end-body < 8 {
			return nil
		}
		var h [8]byte
		if err := mp4Read(s, h[:], body, "mp4 data"); err != nil {
			return err
		}
		kind := binary.BigEndian.Uint32(h[:]) & 0xffffff
		if key == "covr" {
			if *cover == nil {
				mime := ""
				switch kind {
				case 13:
					mime = "image/jpeg"
				case 14:
					mime = "image/png"
				case 27:
					mime = "image/bmp"
				}
				if mime != "" {
					*cover = &Cover{MIME: mime, Offset: body + 8, Size: end - body - 8}
				}
			}
			return nil
		}
		b, err := mp4Body(s, body+8, end, 4096, "mp4 data")
		if err != nil {
			return err
		}
		switch key {
		case "trkn", "disk":
			if len(b) >= 4 {
				vals = append(vals, strconv.Itoa(int(binary.BigEndian.Uint16(b[2:]))))
			}
		case "gnre":
			if len(b) >= 2 {
				if g := genreName(strconv.Itoa(int(binary.BigEndian.Uint16(b)) - 1)); g != "" {
					vals = append(vals, g)
				}
			}
		default:
			if kind == 1 {
				vals = append(vals, string(b))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	mp4SetTag(tags, key, vals)
	return nil
}

// mp4Fields maps iTunes item and QuickTime user data keys to Tags fields.
var mp4Fields = map[string]string{
	"\xa9nam": "title", "\xa9ART": "artist", "\xa9alb": "album", "aART": "album_artist",
	"trkn": "track", "disk": "disc", "\xa9day": "year", "\xa9gen": "genre", "gnre": "genre",
}

// mp4SetTag stores the values of the item or user data key.
func mp4SetTag(t *Tags, key string, vals []string) {
	if field, ok := mp4Fields[key]; ok {
		t.set(field, vals)
	}
}
