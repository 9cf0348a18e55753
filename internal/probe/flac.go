package probe

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
)

// FLAC (RFC 9639): "fLaC", metadata blocks (STREAMINFO first), then frames.
// Duration comes exact from STREAMINFO. The peak comes from a scan of the
// frame headers when the audio is short (flacExactBytes); a frame's size is
// not in its header, so the scan reads every byte. Longer audio is sampled
// (flacSample): a few frame headers found at chosen offsets, with the seek
// table, give exact (sample, offset) points, and the peak is the densest
// span of at least one window between them (method Index). Without any of
// that the average stands in.

// flacInfo is a STREAMINFO block.
type flacInfo struct {
	minBlock, maxBlock int
	minFrame, maxFrame int
	rate               int
	channels           int
	bits               int
	samples            uint64 // 0: unknown
}

// flacSeekPoint is one SEEKTABLE point: the frame holding sample starts
// offset bytes after the first frame.
type flacSeekPoint struct {
	sample uint64
	offset int64
}

const (
	flacMaxSeekBytes = 18 << 12 // 4,096 seek points
	flacMaxMIME      = 256
	// flacExactBytes: audio up to this size is scanned frame by frame;
	// longer audio is sampled. A 3-minute CD-quality track is ~20 MB.
	flacExactBytes = 512 << 10
	// flacProbeChunk is read at a time looking for a frame header: about
	// half a frame of CD audio at 4,096 samples a frame.
	flacProbeChunk = 4 << 10
)

func matchFLAC(head []byte, ext string) bool {
	if bytes.HasPrefix(head, []byte("fLaC")) {
		return true
	}
	// An ID3v2 tag hides the marker past the 64 head bytes; the extension
	// decides.
	return bytes.HasPrefix(head, []byte("ID3")) && ext == ".flac"
}

// xiphRead fills p from off, turning a short read into io.ErrUnexpectedEOF.
func xiphRead(s *source, p []byte, off int64, what string) error {
	_, err := s.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("%s at %d: %w", what, off, err)
	}
	return nil
}

// flacSkipID3 returns the offset after a leading ID3v2 tag (0 without one):
// "ID3", version, flags, a 28-bit syncsafe size, and a 10-byte footer when
// flag 0x10 is set.
func flacSkipID3(s *source) (int64, error) {
	var h [10]byte
	if s.size < 10 {
		return 0, nil
	}
	if err := xiphRead(s, h[:], 0, "id3v2 header"); err != nil {
		return 0, err
	}
	if string(h[:3]) != "ID3" {
		return 0, nil
	}
	if h[6]|h[7]|h[8]|h[9] >= 0x80 {
		return 0, fmt.Errorf("%w: id3v2 size is not syncsafe", ErrCorrupt)
	}
	size := int64(h[6])<<21 | int64(h[7])<<14 | int64(h[8])<<7 | int64(h[9])
	off := 10 + size
	if h[5]&0x10 != 0 {
		off += 10
	}
	return off, nil
}

func parseFLAC(s *source, rep *Report) error {
	off, err := flacSkipID3(s)
	if err != nil {
		return err
	}
	var marker [4]byte
	if err := xiphRead(s, marker[:], off, "flac marker"); err != nil {
		return err
	}
	if string(marker[:]) != "fLaC" {
		return fmt.Errorf("%w: no fLaC marker at %d", ErrCorrupt, off)
	}
	info, points, audioStart, err := flacMetadata(s, off+4, rep)
	if err != nil {
		return err
	}
	rep.Streams = append(rep.Streams, Stream{Type: "audio", Codec: "flac", SampleRate: info.rate, Channels: info.channels})
	audio := s.size - audioStart
	if audio <= 0 {
		return fmt.Errorf("flac: no frames after the metadata: %w", io.ErrUnexpectedEOF)
	}

	// The frame scan reads every frame header (and so every byte): exact,
	// for short audio within the budget, and for audio whose length in
	// samples STREAMINFO does not state.
	var meter *peakMeter
	samples := info.samples
	if audio <= s.budget && (audio <= flacExactBytes || samples == 0) {
		m, end, err := flacScan(s, info, audioStart, s.size)
		switch {
		case err == nil:
			meter = m
			if samples == 0 {
				samples = end
			}
		case !errors.Is(err, ErrBudget):
			return err
		}
		// A scan over the step budget falls back to the seek table.
	}
	if samples == 0 {
		return fmt.Errorf("%w: flac: total samples unknown and no frame scan", ErrBudget)
	}
	rep.Duration = float64(samples) / float64(info.rate)
	rep.BitrateAvg = int64(float64(audio) * 8 / rep.Duration)
	if meter != nil {
		rep.BitratePeak = meter.result(rep.Duration)
		rep.PeakMethod = Exact
		return nil
	}
	if rep.Duration >= s.window.Seconds() {
		peak, err := flacSample(s, info, points, audioStart, samples)
		if err != nil {
			return err
		}
		if peak > 0 {
			rep.BitratePeak, rep.PeakMethod = peak, Index
			return nil
		}
	}
	switch {
	case len(points) > 1:
		rep.BitratePeak = flacIndexPeak(points, info.rate, samples, audio, s.window.Seconds(), rep.Duration)
		rep.PeakMethod = Index
	default:
		rep.BitratePeak = rep.BitrateAvg
		rep.PeakMethod = Nominal
	}
	return nil
}

// flacMetadata reads the metadata blocks from off (just after "fLaC"): the
// stream info, the seek points, and the offset of the first frame. Tags and
// cover go into rep.
func flacMetadata(s *source, off int64, rep *Report) (info flacInfo, points []flacSeekPoint, audioStart int64, err error) {
	haveInfo := false
	coverType := uint32(math.MaxUint32)
	for first := true; ; first = false {
		if err := s.step(); err != nil {
			return info, nil, 0, err
		}
		var h [4]byte
		if err := xiphRead(s, h[:], off, "flac metadata block header"); err != nil {
			return info, nil, 0, err
		}
		last, typ := h[0]&0x80 != 0, h[0]&0x7f
		n := int64(h[1])<<16 | int64(h[2])<<8 | int64(h[3])
		body := off + 4
		if body+n > s.size {
			return info, nil, 0, fmt.Errorf("flac metadata block %d at %d: %w", typ, off, io.ErrUnexpectedEOF)
		}
		if first != (typ == 0) {
			return info, nil, 0, fmt.Errorf("%w: flac: STREAMINFO is not the first block", ErrCorrupt)
		}
		switch typ {
		case 0: // STREAMINFO
			if n != 34 {
				return info, nil, 0, fmt.Errorf("%w: flac: STREAMINFO of %d bytes", ErrCorrupt, n)
			}
			var b [34]byte
			if err := xiphRead(s, b[:], body, "flac STREAMINFO"); err != nil {
				return info, nil, 0, err
			}
			if info, err = flacStreamInfo(b[:]); err != nil {
				return info, nil, 0, err
			}
			haveInfo = true
		case 3: // SEEKTABLE
			b := make([]byte, min(n, flacMaxSeekBytes)/18*18)
			if err := xiphRead(s, b, body, "flac SEEKTABLE"); err != nil {
				return info, nil, 0, err
			}
			points = flacSeekTable(b)
		case 4: // VORBIS_COMMENT
			b := make([]byte, min(n, maxCommentBytes))
			if err := xiphRead(s, b, body, "flac VORBIS_COMMENT"); err != nil {
				return info, nil, 0, err
			}
			if err := parseVorbisComment(b, int64(len(b)) < n, &rep.Tags); err != nil {
				return info, nil, 0, err
			}
		case 6: // PICTURE
			typ, c, err := flacPicture(s, body, n)
			if err != nil {
				return info, nil, 0, err
			}
			// The front cover (type 3) wins; else the first picture.
			if c != nil && (rep.Cover == nil || typ == 3 && coverType != 3) {
				rep.Cover, coverType = c, typ
			}
		case 127:
			return info, nil, 0, fmt.Errorf("%w: flac: invalid metadata block type 127", ErrCorrupt)
		}
		off = body + n
		if last {
			break
		}
	}
	if !haveInfo {
		return info, nil, 0, fmt.Errorf("%w: flac: no STREAMINFO", ErrCorrupt)
	}
	return info, points, off, nil
}

// flacStreamInfo decodes the 34 bytes of a STREAMINFO block.
func flacStreamInfo(b []byte) (flacInfo, error) {
	if len(b) < 34 {
		return flacInfo{}, fmt.Errorf("%w: flac: short STREAMINFO", ErrCorrupt)
	}
	v := binary.BigEndian.Uint64(b[10:18])
	info := flacInfo{
		minBlock: int(binary.BigEndian.Uint16(b[0:2])),
		maxBlock: int(binary.BigEndian.Uint16(b[2:4])),
		minFrame: int(b[4])<<16 | int(b[5])<<8 | int(b[6]),
		maxFrame: int(b[7])<<16 | int(b[8])<<8 | int(b[9]),
		rate:     int(v >> 44),
		channels: int(v>>41&7) + 1,
		bits:     int(v>>36&31) + 1,
		samples:  v & (1<<36 - 1),
	}
	if info.rate == 0 {
		return info, fmt.Errorf("%w: flac: sample rate 0", ErrCorrupt)
	}
	return info, nil
}

// flacSeekTable decodes seek points (sample u64, offset u64, frame samples
// u16), dropping placeholders and points out of order.
func flacSeekTable(b []byte) []flacSeekPoint {
	var points []flacSeekPoint
	for ; len(b) >= 18; b = b[18:] {
		sample := binary.BigEndian.Uint64(b)
		offset := binary.BigEndian.Uint64(b[8:])
		if sample == math.MaxUint64 || offset > math.MaxInt64 {
			continue
		}
		if n := len(points); n > 0 && (sample <= points[n-1].sample || int64(offset) < points[n-1].offset) {
			continue
		}
		points = append(points, flacSeekPoint{sample: sample, offset: int64(offset)})
	}
	return points
}

// flacPicture locates the picture data of the PICTURE block of n bytes at
// off: type u32, MIME (length-prefixed), description (length-prefixed),
// width, height, depth, colours, data length u32, data. The description
// and the data are skipped by offset, never read.
func flacPicture(s *source, off, n int64) (uint32, *Cover, error) {
	corrupt := fmt.Errorf("%w: flac PICTURE at %d", ErrCorrupt, off)
	end := off + n
	var h [8]byte
	if n < 32 {
		return 0, nil, corrupt
	}
	if err := xiphRead(s, h[:], off, "flac PICTURE"); err != nil {
		return 0, nil, err
	}
	typ := binary.BigEndian.Uint32(h[:])
	mimeLen := int64(binary.BigEndian.Uint32(h[4:]))
	if mimeLen > flacMaxMIME || off+8+mimeLen+4 > end {
		return 0, nil, corrupt
	}
	b := make([]byte, mimeLen+4)
	if err := xiphRead(s, b, off+8, "flac PICTURE"); err != nil {
		return 0, nil, err
	}
	mime := string(b[:mimeLen])
	descLen := int64(binary.BigEndian.Uint32(b[mimeLen:]))
	rest := off + 8 + mimeLen + 4 + descLen
	if rest+20 > end {
		return 0, nil, corrupt
	}
	var d [20]byte
	if err := xiphRead(s, d[:], rest, "flac PICTURE"); err != nil {
		return 0, nil, err
	}
	size := int64(binary.BigEndian.Uint32(d[16:]))
	if rest+20+size > end {
		return 0, nil, corrupt
	}
	if mime == "-->" { // the data is a URL, not a picture
		return typ, nil, nil
	}
	return typ, &Cover{MIME: mime, Offset: rest + 20, Size: size}, nil
}

// flacFrame is a decoded frame header.
type flacFrame struct {
	variable  bool   // blocking strategy: number counts samples, not frames
	number    uint64 // frame or sample number
	blockSize int
}

// flacFrameHeader decodes the frame header at the start of b (up to 16
// bytes), checking its reserved bits and its CRC-8. ok is false for
// anything that is not a valid header.
func flacFrameHeader(b []byte) (f flacFrame, ok bool) {
	if len(b) < 6 || b[0] != 0xFF || b[1]&0xFE != 0xF8 {
		return f, false
	}
	f.variable = b[1]&1 != 0
	bsCode, rateCode := b[2]>>4, b[2]&15
	chans, sampleSize := b[3]>>4, b[3]>>1&7
	if bsCode == 0 || rateCode == 15 || chans >= 11 || sampleSize == 3 || b[3]&1 != 0 {
		return f, false
	}
	// The coded number: UTF-8-like, 1 to 7 bytes, up to 36 bits.
	i := 4
	c := b[i]
	i++
	var extra int
	switch {
	case c < 0x80:
		f.number = uint64(c)
	case c&0xE0 == 0xC0:
		f.number, extra = uint64(c&0x1F), 1
	case c&0xF0 == 0xE0:
		f.number, extra = uint64(c&0x0F), 2
	case c&0xF8 == 0xF0:
		f.number, extra = uint64(c&0x07), 3
	case c&0xFC == 0xF8:
		f.number, extra = uint64(c&0x03), 4
	case c&0xFE == 0xFC:
		f.number, extra = uint64(c&0x01), 5
	case c == 0xFE:
		f.number, extra = 0, 6
	default:
		return f, false
	}
	if !f.variable && extra > 5 { // frame numbers have at most 31 bits
		return f, false
	}
	for range extra {
		if i >= len(b) || b[i]&0xC0 != 0x80 {
			return f, false
		}
		f.number = f.number<<6 | uint64(b[i]&0x3F)
		i++
	}
	switch {
	case bsCode == 1:
		f.blockSize = 192
	case bsCode <= 5:
		f.blockSize = 576 << (bsCode - 2)
	case bsCode == 6:
		if i+1 > len(b) {
			return f, false
		}
		f.blockSize = int(b[i]) + 1
		i++
	case bsCode == 7:
		if i+2 > len(b) {
			return f, false
		}
		f.blockSize = int(binary.BigEndian.Uint16(b[i:])) + 1
		i += 2
	default:
		f.blockSize = 256 << (bsCode - 8)
	}
	switch rateCode {
	case 12:
		i++
	case 13, 14:
		i += 2
	}
	if i+1 > len(b) || flacCRC8(b[:i]) != b[i] {
		return f, false
	}
	return f, true
}

// flacCRC8 is the frame header CRC: polynomial x^8+x^2+x+1, initial 0.
func flacCRC8(b []byte) byte {
	var crc byte
	for _, c := range b {
		crc ^= c
		for range 8 {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x07
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// flacScan walks the frames from start to end, feeding each frame's size
// at its start time to a peak meter. A candidate sync code counts as the
// next frame only if its header CRC holds and it carries the next frame or
// sample number, so sync-like bytes inside frame data cannot fool it. It
// returns the meter and the sample count it found.
func flacScan(s *source, info flacInfo, start, end int64) (*peakMeter, uint64, error) {
	const chunk = 64 << 10
	m := newPeakMeter(s.window.Seconds())
	buf := make([]byte, 0, chunk)
	bufOff := start
	// window returns the buffered bytes from pos, refilling so that at
	// least 16 are there unless the audio ends first.
	window := func(pos int64) ([]byte, error) {
		if pos < bufOff || pos+16 > bufOff+int64(len(buf)) && bufOff+int64(len(buf)) < end {
			n := min(end-pos, chunk)
			buf = buf[:n]
			if err := xiphRead(s, buf, pos, "flac frame"); err != nil {
				return nil, err
			}
			bufOff = pos
		}
		return buf[pos-bufOff:], nil
	}
	b, err := window(start)
	if err != nil {
		return nil, 0, err
	}
	cur, ok := flacFrameHeader(b[:min(len(b), 16)])
	if !ok {
		return nil, 0, fmt.Errorf("%w: flac: no frame at %d", ErrCorrupt, start)
	}
	nominal := uint64(cur.blockSize) // the fixed block size of the stream
	sampleOf := func(f flacFrame) uint64 {
		if f.variable {
			return f.number
		}
		return f.number * nominal
	}
	curOff := start
	for {
		if err := s.step(); err != nil {
			return nil, 0, err
		}
		want := cur.number + 1
		if cur.variable {
			want = cur.number + uint64(cur.blockSize)
		}
		next := int64(-1)
		var nf flacFrame
		for pos := curOff + 2; pos < end && next < 0; {
			b, err := window(pos)
			if err != nil {
				return nil, 0, err
			}
			i := bytes.IndexByte(b, 0xFF)
			if i < 0 {
				pos += int64(len(b))
				continue
			}
			pos += int64(i)
			if i+16 > len(b) && pos+16 <= end {
				continue // refill from the candidate
			}
			if f, ok := flacFrameHeader(b[i:min(len(b), i+16)]); ok && f.number == want && f.variable == cur.variable {
				next, nf = pos, f
			}
			pos++
		}
		t := float64(sampleOf(cur)) / float64(info.rate)
		if next < 0 {
			m.add(Packet{Time: t, Bytes: end - curOff})
			total := sampleOf(cur) + uint64(cur.blockSize)
			switch {
			case info.samples != 0 && total < info.samples:
				// The frames stop short: a truncated file, or a damaged
				// frame the scan cannot step over.
				return nil, 0, fmt.Errorf("flac: frames end at sample %d of %d: %w", total, info.samples, io.ErrUnexpectedEOF)
			case info.samples != 0 && total > info.samples:
				return nil, 0, fmt.Errorf("%w: flac: frames hold %d samples, STREAMINFO says %d", ErrCorrupt, total, info.samples)
			}
			return m, total, nil
		}
		m.add(Packet{Time: t, Bytes: next - curOff})
		cur, curOff = nf, next
	}
}

// flacIndexPeak approximates the peak from seek points.
func flacIndexPeak(points []flacSeekPoint, rate int, samples uint64, audio int64, window, duration float64) int64 {
	spans := make([]xiphPoint, 0, len(points)+2)
	if points[0].sample != 0 {
		spans = append(spans, xiphPoint{})
	}
	for _, p := range points {
		if p.sample >= samples || p.offset > audio {
			break
		}
		spans = append(spans, xiphPoint{time: float64(p.sample) / float64(rate), off: p.offset})
	}
	spans = append(spans, xiphPoint{time: float64(samples) / float64(rate), off: audio})
	return xiphSpanPeak(spans, window, duration, 1)
}

// xiphPoint is an index entry: the media at time starts at byte off.
type xiphPoint struct {
	time float64
	off  int64
}

// xiphSpanPeak approximates the peak from index points in time order: the
// bytes between two points (times scale, the share of them that is media
// data) are spread evenly over the media time between them.
func xiphSpanPeak(points []xiphPoint, window, duration, scale float64) int64 {
	m := newPeakMeter(window)
	per := max(1, 100_000/len(points)) // sub-packets per span, bounded in total
	for i := 0; i+1 < len(points); i++ {
		p, q := points[i], points[i+1]
		if q.time <= p.time || q.off < p.off {
			continue
		}
		d := q.time - p.time
		k := per
		if f := math.Ceil(d / (window / 16)); f < float64(per) {
			k = max(1, int(f))
		}
		bytes := int64(float64(q.off-p.off) * scale)
		for j := range k {
			b := bytes / int64(k)
			if j == k-1 {
				b = bytes - b*int64(k-1)
			}
			m.add(Packet{Time: p.time + d*float64(j)/float64(k), Bytes: b})
		}
	}
	return m.result(duration)
}

// flacSample estimates the peak of audio too long to scan (xiphSampler),
// from the seek table and frame headers found by reading at chosen offsets:
// about half a frame each, a few KiB of CD audio, where a window of it is
// ~700 KB. A frame header counts only if its CRC holds, it shares the
// first frame's blocking strategy, rate and sample size, and its sample
// number lies between those of the marks around it. It returns 0 when it
// finds nothing to estimate from.
func flacSample(s *source, info flacInfo, seek []flacSeekPoint, audioStart int64, samples uint64) (int64, error) {
	audio := s.size - audioStart
	var h [16]byte
	if err := xiphRead(s, h[:min(audio, 16)], audioStart, "flac frame"); errors.Is(err, ErrBudget) {
		return 0, nil // the seek table or the average will do
	} else if err != nil {
		return 0, err
	}
	first, ok := flacFrameHeader(h[:])
	if !ok {
		return 0, fmt.Errorf("%w: flac: no frame at %d", ErrCorrupt, audioStart)
	}
	search := int64(256 << 10) // a frame's worth: STREAMINFO may not say
	if info.maxFrame > 0 {
		search = int64(info.maxFrame) + 16
	}
	x := newXiphSampler(s, float64(info.rate), audio, samples)
	for _, q := range seek {
		x.add(xiphMark{pos: q.sample, off: q.offset})
	}
	buf := make([]byte, flacProbeChunk)
	x.find = func(off int64, lo, hi xiphMark) (xiphMark, bool, error) {
		end := min(hi.off, off+search)
		for pos := off; pos < end; {
			if err := x.spend(); err != nil {
				return xiphMark{}, false, err
			}
			b := buf[:min(int64(len(buf)), audio-pos)]
			if err := xiphRead(s, b, audioStart+pos, "flac frame"); err != nil {
				return xiphMark{}, false, err
			}
			// A header is up to 16 bytes: one that may run past the
			// chunk is looked at from the next.
			n := len(b)
			if pos+int64(n) < audio {
				n -= 15
			}
			for j := 0; j < n && pos+int64(j) < end; j++ {
				k := bytes.IndexByte(b[j:n], 0xFF)
				if k < 0 {
					break
				}
				j += k
				at := pos + int64(j)
				if at <= lo.off || at >= end {
					continue
				}
				c := b[j:min(len(b), j+16)]
				f, ok := flacFrameHeader(c)
				if !ok || f.variable != first.variable || c[2]&15 != h[2]&15 || c[3]&0x0e != h[3]&0x0e {
					continue
				}
				sample := f.number
				if !f.variable {
					sample *= uint64(first.blockSize)
				}
				if sample > lo.pos && sample < hi.pos {
					return xiphMark{pos: sample, off: at}, true, nil
				}
			}
			pos += int64(max(n, 1))
		}
		return xiphMark{}, false, nil
	}
	if err := x.run(); err != nil {
		return 0, err
	}
	return x.peak(), nil
}

// xiphMark is an exact point of a stream: the media at pos (in samples,
// or granules) starts at byte off of the audio.
type xiphMark struct {
	pos uint64
	off int64
}

// xiphSampler estimates the peak of audio too long to read whole, FLAC
// frames or Ogg pages, from exact marks: those the file gives (a seek
// table) and those a probe finds by reading from a chosen offset to the
// next frame or page header (find). The bytes between two marks over the
// time between them is the exact average bitrate of that span, so the
// estimate is the densest span of at least one window between marks:
// first over a coarse map (xiphCoarse probes evenly spaced in bytes, hence
// denser in time where the bitrate is high, where the file's own marks
// leave gaps), then again after the xiphRegions densest spans are refined
// with marks half a window apart.
//
// The trade-off: a burst shorter than the spacing of the marks around it
// is averaged with its surroundings, so on pathological input the estimate
// falls below the exact peak; it never exceeds the densest real span of one
// window or more. Music changes its bitrate over seconds, not frames, and
// TestFLACSampled and TestOggSampled check tracks whose loud sections last
// a few windows against the exact peak. A file cut short of what its
// headers say is not noticed here, unlike in a full scan.
type xiphSampler struct {
	s     *source
	rate  float64    // pos units per second
	marks []xiphMark // in pos and off order, from (0, 0) to the end
	find  func(off int64, lo, hi xiphMark) (xiphMark, bool, error)
	// scale is the share of the bytes that is media data (Ogg pages
	// have headers).
	scale  float64
	probes int
	read0  int64 // s.read before sampling
}

const (
	xiphCoarse  = 16
	xiphRegions = 2
	// xiphMaxProbes and xiphMaxBytes bound the sampling.
	xiphMaxProbes = 64
	xiphMaxBytes  = 512 << 10
)

// newXiphSampler starts a sampler over audio bytes holding end units of
// media.
func newXiphSampler(s *source, rate float64, audio int64, end uint64) *xiphSampler {
	return &xiphSampler{s: s, rate: rate, scale: 1, read0: s.read,
		marks: []xiphMark{{}, {pos: end, off: audio}}}
}

// add inserts a mark that lies strictly between two others in both pos
// and off, and drops any other.
func (x *xiphSampler) add(m xiphMark) bool {
	i := sort.Search(len(x.marks), func(n int) bool { return x.marks[n].off > m.off })
	if i == 0 || i == len(x.marks) {
		return false
	}
	lo, hi := x.marks[i-1], x.marks[i]
	if m.off <= lo.off || m.pos <= lo.pos || m.pos >= hi.pos {
		return false
	}
	x.marks = slices.Insert(x.marks, i, m)
	return true
}

// spend counts one read of a probe against the caps.
func (x *xiphSampler) spend() error {
	if x.s.read-x.read0 >= xiphMaxBytes {
		return ErrBudget
	}
	return x.s.step()
}

// probe finds a mark from off and adds it.
func (x *xiphSampler) probe(off int64) error {
	if x.probes >= xiphMaxProbes {
		return ErrBudget
	}
	x.probes++
	i := sort.Search(len(x.marks), func(n int) bool { return x.marks[n].off > off })
	if i == 0 || i == len(x.marks) {
		return nil
	}
	m, ok, err := x.find(off, x.marks[i-1], x.marks[i])
	if ok {
		x.add(m)
	}
	return err
}

// xiphSpan is the span between marks i and j (j > i), at bps bits per
// second.
type xiphSpan struct {
	i, j int
	bps  float64
}

// spans lists, for each mark, the span to the first mark at least w
// later, at its average bitrate. Where the span to the mark before that
// one, shorter than w, holds more bytes than a window at that average,
// its bytes over one window count instead: they all start within one
// window, so that is a lower bound of the peak, where the longer span's
// average dilutes a burst.
func (x *xiphSampler) spans(w uint64) []xiphSpan {
	var out []xiphSpan
	j := 0
	for i, a := range x.marks {
		for j < len(x.marks) && x.marks[j].pos < a.pos+w {
			j++
		}
		if j == len(x.marks) {
			break
		}
		b := x.marks[j]
		bps := float64(b.off-a.off) * 8 / (float64(b.pos-a.pos) / x.rate)
		if c := x.marks[j-1]; j-1 > i {
			bps = max(bps, float64(c.off-a.off)*8/(float64(w)/x.rate))
		}
		out = append(out, xiphSpan{i: i, j: j, bps: bps * x.scale})
	}
	return out
}

// window is the peak window in pos units.
func (x *xiphSampler) window() uint64 {
	return max(1, uint64(x.s.window.Seconds()*x.rate))
}

// peak is the densest span of at least a window; 0 if there is none.
func (x *xiphSampler) peak() int64 {
	peak := 0.0
	for _, sp := range x.spans(x.window()) {
		peak = max(peak, sp.bps)
	}
	return int64(peak)
}

// run maps the audio coarsely, then refines the densest spans. Running
// into the caps ends it early without an error.
func (x *xiphSampler) run() error {
	err := x.sample()
	if errors.Is(err, ErrBudget) {
		err = nil
	}
	return err
}

func (x *xiphSampler) sample() error {
	audio := x.marks[len(x.marks)-1].off
	near := audio / (2 * xiphCoarse)
	for k := int64(1); k < xiphCoarse; k++ {
		off := audio * k / xiphCoarse
		i := sort.Search(len(x.marks), func(n int) bool { return x.marks[n].off > off })
		if i == 0 || i == len(x.marks) || off-x.marks[i-1].off < near || x.marks[i].off-off < near {
			continue // a mark is close enough
		}
		if err := x.probe(off); err != nil {
			return err
		}
	}
	w := x.window()
	spans := x.spans(w)
	slices.SortStableFunc(spans, func(a, b xiphSpan) int { return cmp.Compare(b.bps, a.bps) })
	var regions [][2]uint64
	for _, sp := range spans {
		if len(regions) == xiphRegions {
			break
		}
		a, b := x.marks[sp.i].pos, x.marks[sp.j].pos
		if slices.ContainsFunc(regions, func(r [2]uint64) bool { return a < r[1] && b > r[0] }) {
			continue
		}
		regions = append(regions, [2]uint64{a, b})
	}
	step := max(w/2, 1)
	for _, r := range regions {
		if err := x.refine(r[0]-min(r[0], step), r[1]+step, step); err != nil {
			return err
		}
	}
	return nil
}

// refine adds marks until no gap that reaches into [a, b] holds a stretch
// of it wider than step.
func (x *xiphSampler) refine(a, b, step uint64) error {
	var targets []uint64
	for i := 0; i+1 < len(x.marks); i++ {
		lo, hi := x.marks[i].pos, x.marks[i+1].pos
		if hi <= a || lo >= b || hi-lo <= step {
			continue
		}
		k := (hi - lo + step - 1) / step
		for n := uint64(1); n < k; n++ {
			if t := lo + (hi-lo)*n/k; t >= a && t <= b {
				targets = append(targets, t)
			}
		}
	}
	for _, t := range targets {
		// The offset of t, by interpolation between the marks around it.
		i := sort.Search(len(x.marks), func(n int) bool { return x.marks[n].pos > t })
		if i == 0 || i == len(x.marks) {
			continue
		}
		lo, hi := x.marks[i-1], x.marks[i]
		off := lo.off + int64(float64(hi.off-lo.off)*float64(t-lo.pos)/float64(hi.pos-lo.pos))
		if err := x.probe(off); err != nil {
			return err
		}
	}
	return nil
}
