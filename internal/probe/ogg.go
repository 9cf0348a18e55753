package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Ogg (RFC 3533) carrying Vorbis, Opus (RFC 7845) or FLAC (the Ogg FLAC
// mapping). The first logical stream of a known codec is probed: its
// header packets give the codec, rate, channels and comments; the granule
// position of its last page, found by a tail read, gives the duration; a
// walk over its page headers (never the page bodies) gives packet sizes for
// the peak, unless the stream has so many pages that sampling them
// (oggSample) reads less.
//
// Cover art in METADATA_BLOCK_PICTURE comments is base64 inside the
// comment packet, so the picture's bytes are nowhere in the file as such:
// no Cover is reported for Ogg.

const (
	oggHeaderLen = 27
	oggMaxPage   = oggHeaderLen + 255 + 255*255
	// oggTail is the first tail read for the last page: most last pages
	// are a few KiB.
	oggTail = 8 << 10
	// oggMaxTail is the widest tail read, for a long last page or files
	// whose last pages belong to other streams.
	oggMaxTail = 1 << 20
	// oggWalkMin: a walk over every page header that reads no more than
	// this is always taken (exact). oggPredictAfter pages into the walk,
	// its cost is extrapolated to the whole stream.
	oggWalkMin      = 64 << 10
	oggPredictAfter = 32
	// oggSampleProbes is what sampling typically spends: xiphCoarse
	// probes and a few to refine each of xiphRegions.
	oggSampleProbes = 32
	// oggMaxHeaderPages bounds the pages read for the header packets.
	oggMaxHeaderPages = 4096
)

func matchOgg(head []byte, ext string) bool {
	return bytes.HasPrefix(head, []byte("OggS"))
}

// oggPage is a page header: the page starts at off and ends at off+size.
type oggPage struct {
	off     int64
	flags   byte // 1: continued packet, 2: first page, 4: last page
	granule int64
	serial  uint32
	segs    []byte // lacing values
	size    int64
}

func (p oggPage) body() int64 { return p.off + oggHeaderLen + int64(len(p.segs)) }

// oggParseHeader decodes the page header at the start of b; segs aliases b.
// ok is false if b does not start with a whole page header.
func oggParseHeader(b []byte, off int64) (p oggPage, ok bool) {
	if len(b) < oggHeaderLen || string(b[:4]) != "OggS" || b[4] != 0 {
		return p, false
	}
	n := int(b[26])
	if len(b) < oggHeaderLen+n {
		return p, false
	}
	p = oggPage{
		off:     off,
		flags:   b[5],
		granule: int64(binary.LittleEndian.Uint64(b[6:])),
		serial:  binary.LittleEndian.Uint32(b[14:]),
		segs:    b[oggHeaderLen : oggHeaderLen+n],
	}
	p.size = int64(oggHeaderLen + n)
	for _, v := range p.segs {
		p.size += int64(v)
	}
	return p, true
}

// oggReadPage reads the page header at off into buf.
func oggReadPage(s *source, off int64, buf *[oggHeaderLen + 255]byte) (oggPage, error) {
	if err := xiphRead(s, buf[:oggHeaderLen], off, "ogg page"); err != nil {
		return oggPage{}, err
	}
	n := int(buf[26])
	if err := xiphRead(s, buf[oggHeaderLen:oggHeaderLen+n], off+oggHeaderLen, "ogg segment table"); err != nil {
		return oggPage{}, err
	}
	p, ok := oggParseHeader(buf[:oggHeaderLen+n], off)
	if !ok {
		return p, fmt.Errorf("%w: no ogg page at %d", ErrCorrupt, off)
	}
	if p.off+p.size > s.size {
		return p, fmt.Errorf("ogg page at %d runs past the end: %w", off, io.ErrUnexpectedEOF)
	}
	return p, nil
}

// oggStream is what the header packets of the probed stream say.
type oggStream struct {
	serial   uint32
	codec    string
	rate     int // sample rate of the granule positions
	channels int
	preSkip  int64 // Opus: granules to drop at the start
	headers  int   // header packets, 0 while unknown (Ogg FLAC)
	// block is the duration of every packet but the last, in seconds,
	// when the stream states it (FLAC with a fixed block size); 0 if not.
	block float64
}

// time converts a granule position to seconds of media time.
func (st *oggStream) time(granule int64) float64 {
	return float64(granule-st.preSkip) / float64(st.rate)
}

// oggIdentify reads the first packet of a stream; ok is false for a codec
// it does not know.
func oggIdentify(b []byte) (st oggStream, ok bool, err error) {
	corrupt := func(what string) error { return fmt.Errorf("%w: ogg: short %s header", ErrCorrupt, what) }
	switch {
	case bytes.HasPrefix(b, []byte("\x01vorbis")):
		if len(b) < 30 {
			return st, false, corrupt("vorbis")
		}
		st = oggStream{codec: "vorbis", channels: int(b[11]), rate: int(binary.LittleEndian.Uint32(b[12:])), headers: 3}
	case bytes.HasPrefix(b, []byte("OpusHead")):
		if len(b) < 19 {
			return st, false, corrupt("opus")
		}
		// Opus granules count 48 kHz samples whatever the input rate.
		st = oggStream{codec: "opus", channels: int(b[9]), rate: 48000, preSkip: int64(binary.LittleEndian.Uint16(b[10:])), headers: 2}
	case bytes.HasPrefix(b, []byte("\x7fFLAC")):
		// "\x7fFLAC", version (2 bytes), header packets that follow
		// (u16, 0: unknown), "fLaC", then the STREAMINFO block.
		if len(b) < 51 || string(b[9:13]) != "fLaC" || b[13]&0x7f != 0 {
			return st, false, corrupt("ogg flac")
		}
		info, err := flacStreamInfo(b[17:51])
		if err != nil {
			return st, false, err
		}
		st = oggStream{codec: "flac", channels: info.channels, rate: info.rate}
		if info.minBlock == info.maxBlock {
			st.block = float64(info.maxBlock) / float64(info.rate)
		}
		if n := int(binary.BigEndian.Uint16(b[7:])); n > 0 {
			st.headers = 1 + n
		}
	default:
		return st, false, nil
	}
	if st.rate <= 0 || st.channels == 0 {
		return st, false, fmt.Errorf("%w: ogg %s: rate %d, %d channels", ErrCorrupt, st.codec, st.rate, st.channels)
	}
	return st, true, nil
}

func parseOgg(s *source, rep *Report) error {
	st, audioStart, err := oggHeaders(s, rep)
	if err != nil {
		return err
	}
	rep.Streams = append(rep.Streams, Stream{Type: "audio", Codec: st.codec, SampleRate: st.rate, Channels: st.channels})
	last, err := oggLastGranule(s, &st, audioStart)
	if err != nil {
		return err
	}
	rep.Duration = st.time(last)
	if rep.Duration <= 0 || math.IsInf(rep.Duration, 0) {
		return fmt.Errorf("%w: ogg: last granule %d gives no duration", ErrCorrupt, last)
	}
	audio := s.size - audioStart

	// The page walk reads 27 + segments bytes per page, a few per cent of
	// the audio: exact, unless that comes to more than sampling would
	// read (or half the budget; the rest is kept for sampling).
	save := s.budget
	s.budget = save / 2
	m, payload, avgPage, err := oggScan(s, &st, audioStart)
	s.budget += save - save/2
	switch {
	case err == nil:
		rep.BitrateAvg = int64(float64(payload) * 8 / rep.Duration)
		rep.BitratePeak = m.result(rep.Duration)
		rep.PeakMethod = Exact
		return nil
	case s.ctx.Err() != nil:
		return err
	}
	peak, scale, err := oggSample(s, &st, audioStart, last, avgPage)
	if err != nil && s.ctx.Err() != nil {
		return err
	}
	rep.BitrateAvg = int64(float64(audio) * scale * 8 / rep.Duration)
	if peak > 0 && rep.Duration >= s.window.Seconds() {
		rep.BitratePeak, rep.PeakMethod = peak, Index
	} else {
		rep.BitratePeak, rep.PeakMethod = rep.BitrateAvg, Nominal
	}
	return nil
}

// oggHeaders reads pages from the start until the header packets of the
// first stream of a known codec are complete; it returns the stream and
// the offset of the first page after them. Each header packet is read up
// to maxCommentBytes; the rest of a longer one is skipped unread.
func oggHeaders(s *source, rep *Report) (st oggStream, audioStart int64, err error) {
	var hdr [oggHeaderLen + 255]byte
	chosen := false
	pktNo := 0
	var pkt []byte
	truncated := false
	off := int64(0)
	for pages := 0; ; pages++ {
		if err := s.step(); err != nil {
			return st, 0, err
		}
		if pages == oggMaxHeaderPages {
			return st, 0, fmt.Errorf("%w: ogg: headers span over %d pages", ErrBudget, pages)
		}
		if off >= s.size && !chosen {
			return st, 0, fmt.Errorf("%w: ogg: no stream of a known codec", ErrUnknownFormat)
		}
		if off >= s.size {
			return st, 0, fmt.Errorf("%w: ogg: headers end before the stream's", ErrCorrupt)
		}
		p, err := oggReadPage(s, off, &hdr)
		if err != nil {
			return st, 0, err
		}
		off += p.size
		if !chosen {
			if p.flags&2 == 0 {
				return st, 0, fmt.Errorf("%w: ogg: no stream of a known codec", ErrUnknownFormat)
			}
			// A first page holds just the stream's identification packet.
			n := int64(0)
			for _, v := range p.segs {
				n += int64(v)
				if v < 255 {
					break
				}
			}
			b := make([]byte, min(n, 1024))
			if err := xiphRead(s, b, p.body(), "ogg identification packet"); err != nil {
				return st, 0, err
			}
			var ok bool
			if st, ok, err = oggIdentify(b); err != nil {
				return st, 0, err
			} else if ok {
				chosen, st.serial, pktNo = true, p.serial, 1
			}
			continue
		}
		if p.serial != st.serial {
			continue
		}
		if p.flags&1 == 0 && len(pkt) > 0 {
			return st, 0, fmt.Errorf("%w: ogg: header packet cut at %d", ErrCorrupt, p.off)
		}
		var body []byte
		pos := 0
		for _, v := range p.segs {
			if !truncated {
				if body == nil {
					body = make([]byte, p.size-(p.body()-p.off))
					if err := xiphRead(s, body, p.body(), "ogg header page"); err != nil {
						return st, 0, err
					}
				}
				room := maxCommentBytes - len(pkt)
				pkt = append(pkt, body[pos:pos+min(int(v), room)]...)
				if int(v) > room {
					truncated = true
				}
			}
			pos += int(v)
			if v == 255 {
				continue
			}
			if err := oggHeaderPacket(&st, pktNo, pkt, truncated, rep); err != nil {
				return st, 0, err
			}
			pktNo++
			pkt, truncated = pkt[:0], false
			if st.headers > 0 && pktNo >= st.headers {
				// Audio starts on a fresh page (RFC 7845 § 3, Vorbis I § 4.3.1).
				return st, off, nil
			}
		}
	}
}

// oggHeaderPacket takes in header packet n (from 1) of the stream.
func oggHeaderPacket(st *oggStream, n int, b []byte, truncated bool, rep *Report) error {
	switch st.codec {
	case "vorbis":
		if n == 1 {
			if !bytes.HasPrefix(b, []byte("\x03vorbis")) {
				return fmt.Errorf("%w: ogg vorbis: no comment header", ErrCorrupt)
			}
			return parseVorbisComment(b[7:], truncated, &rep.Tags)
		}
	case "opus":
		if n == 1 {
			if !bytes.HasPrefix(b, []byte("OpusTags")) {
				return fmt.Errorf("%w: ogg opus: no OpusTags", ErrCorrupt)
			}
			return parseVorbisComment(b[8:], truncated, &rep.Tags)
		}
	case "flac":
		// Each header packet is one metadata block; the last carries the
		// last-block flag, which ends the headers when their count is
		// not stated.
		if len(b) < 4 {
			return fmt.Errorf("%w: ogg flac: short metadata block", ErrCorrupt)
		}
		if b[0]&0x7f == 4 {
			if err := parseVorbisComment(b[4:], truncated, &rep.Tags); err != nil {
				return err
			}
		}
		if b[0]&0x80 != 0 && st.headers == 0 {
			st.headers = n + 1
		}
	}
	return nil
}

// oggCRC is the page checksum: CRC-32, polynomial 0x04c11db7, not
// reflected, initial value 0, no final xor, over the page with its CRC
// field zeroed.
func oggCRC(page []byte) uint32 {
	var table [256]uint32
	for i := range table {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04c11db7
			} else {
				c <<= 1
			}
		}
		table[i] = c
	}
	var crc uint32
	for i, b := range page {
		if i >= 22 && i < 26 {
			b = 0
		}
		crc = crc<<8 ^ table[byte(crc>>24)^b]
	}
	return crc
}

// oggLastGranule finds the granule position of the stream's last page by
// reading the file's tail: the last whole page of the stream whose CRC
// holds (so "OggS" inside packet data cannot pass for a page) and that
// ends a packet. The tail grows backwards, doubling, and only the new part
// is read each time, so a long last page costs about its own size.
func oggLastGranule(s *source, st *oggStream, audioStart int64) (int64, error) {
	var b []byte
	from := s.size
	for tail := int64(oggTail); from > audioStart && int64(len(b)) < oggMaxTail; tail *= 2 {
		at := max(audioStart, s.size-min(tail, oggMaxTail))
		nb := make([]byte, s.size-at)
		if err := xiphRead(s, nb[:from-at], at, "ogg tail"); err != nil {
			return 0, err
		}
		copy(nb[from-at:], b)
		b, from = nb, at
		for i := bytes.LastIndex(b, []byte("OggS")); i >= 0; i = bytes.LastIndex(b[:i], []byte("OggS")) {
			if err := s.step(); err != nil {
				return 0, err
			}
			p, ok := oggParseHeader(b[i:], from+int64(i))
			if !ok || p.serial != st.serial || p.granule == -1 || int64(i)+p.size > int64(len(b)) {
				continue
			}
			page := b[i : int64(i)+p.size]
			if oggCRC(page) != binary.LittleEndian.Uint32(page[22:]) {
				continue
			}
			// What follows the last page must be whole pages (of other
			// streams): a partial page means the file was cut.
			if rest := b[int64(i)+p.size:]; len(rest) > 0 {
				q, ok := oggParseHeader(rest, p.off+p.size)
				if !ok || q.off+q.size > s.size {
					return 0, fmt.Errorf("ogg: partial page at %d: %w", p.off+p.size, io.ErrUnexpectedEOF)
				}
			}
			return p.granule, nil
		}
	}
	return 0, fmt.Errorf("%w: ogg: no last page for stream %d", ErrCorrupt, st.serial)
}

// errOggLong: walking every page header would read more than sampling.
var errOggLong = errors.New("ogg: too many pages to walk")

// oggScan walks the stream's page headers from audioStart, reading only
// headers and segment tables. Each page's complete packets (sizes from the
// lacing values) are spread evenly over the media time between the
// previous page's granule and this one's, or placed a block apart when the
// stream has a fixed block size. It returns the meter, the packet bytes
// and the mean page size. Once oggPredictAfter pages show that the walk
// would read more than oggWalkLimit in all, it stops with errOggLong.
func oggScan(s *source, st *oggStream, audioStart int64) (m *peakMeter, payload, avgPage int64, err error) {
	var hdr [oggHeaderLen + 255]byte
	m = newPeakMeter(s.window.Seconds())
	var pending int64
	prev := st.time(0)
	sizes := make([]int64, 0, 255)
	read0 := s.read
	pages := int64(0)
	off := audioStart
	for ; off < s.size; pages++ {
		if err := s.step(); err != nil {
			return nil, 0, 0, err
		}
		if pages >= oggPredictAfter {
			avgPage = (off - audioStart) / pages
			need := float64(s.read-read0) / float64(off-audioStart) * float64(s.size-audioStart)
			if need > float64(oggWalkLimit(avgPage)) {
				return nil, 0, avgPage, errOggLong
			}
		}
		p, err := oggReadPage(s, off, &hdr)
		if err != nil {
			return nil, 0, 0, err
		}
		off += p.size
		if p.serial != st.serial {
			continue
		}
		sizes = sizes[:0]
		for _, v := range p.segs {
			pending += int64(v)
			if v < 255 {
				sizes = append(sizes, pending)
				pending = 0
			}
		}
		if len(sizes) == 0 || p.granule == -1 {
			continue
		}
		t := st.time(p.granule)
		for i, n := range sizes {
			at := prev + (t-prev)*float64(i)/float64(len(sizes))
			if st.block > 0 {
				// A short last block would skew even spacing.
				at = min(prev+st.block*float64(i), t)
			}
			m.add(Packet{Time: at, Bytes: n})
			payload += n
		}
		prev = t
	}
	return m, payload + pending, (off - audioStart) / max(pages, 1), nil
}

// oggWalkLimit is the most the exact walk may read, given the mean page
// size: what sampling typically reads (oggSampleProbes probes of half a
// page and a chunk each), and at least oggWalkMin.
func oggWalkLimit(avgPage int64) int64 {
	return max(oggWalkMin, oggSampleProbes*(avgPage/2+oggChunk(avgPage)))
}

// oggChunk is read at a time looking for a page: half a page, within
// bounds.
func oggChunk(avgPage int64) int64 {
	return min(max(avgPage/2, 512), 4<<10)
}

// oggSample estimates the peak of a stream too long to walk
// (xiphSampler). A probe reads from its offset to the first page header
// of any stream, then hops from header to header to the first page of
// this stream that ends a packet; its mark is the page's granule position
// at the page's end. The share of packet data in the pages hopped over
// scales the bytes between marks. It returns the estimate (0 if none) and
// that share.
func oggSample(s *source, st *oggStream, audioStart, last, avgPage int64) (int64, float64, error) {
	var hdr [oggHeaderLen + 255]byte
	audio := s.size - audioStart
	if last <= 0 {
		return 0, 1, nil
	}
	x := newXiphSampler(s, float64(st.rate), audio, uint64(last))
	buf := make([]byte, oggChunk(avgPage))
	var data, total int64
	x.find = func(off int64, lo, hi xiphMark) (xiphMark, bool, error) {
		// The first page header at or after off: "OggS", version 0 and
		// a header that parses.
		page := int64(-1)
		for pos := audioStart + off; page < 0 && pos < min(s.size, audioStart+off+oggMaxPage); {
			if err := x.spend(); err != nil {
				return xiphMark{}, false, err
			}
			b := buf[:min(int64(len(buf)), s.size-pos)]
			if err := xiphRead(s, b, pos, "ogg sample"); err != nil {
				return xiphMark{}, false, err
			}
			for j := 0; ; j++ {
				k := bytes.Index(b[j:], []byte("OggS"))
				if k < 0 {
					break
				}
				if j += k; j+4 >= len(b) || b[j+4] == 0 {
					page = pos + int64(j) // read whole below
					break
				}
			}
			if page < 0 {
				pos += int64(max(len(b)-3, 1)) // "OggS" may straddle reads
			}
		}
		// Hop to the first page of the stream that ends a packet.
		for page >= 0 && page < audioStart+hi.off {
			if err := x.spend(); err != nil {
				return xiphMark{}, false, err
			}
			p, err := oggReadPage(s, page, &hdr)
			if errors.Is(err, ErrCorrupt) || errors.Is(err, io.ErrUnexpectedEOF) {
				// Not a page after all ("OggS" in packet data), or cut.
				return xiphMark{}, false, nil
			}
			if err != nil {
				return xiphMark{}, false, err
			}
			page += p.size
			total += p.size
			if p.serial != st.serial {
				continue
			}
			data += p.size - (p.body() - p.off)
			if p.granule < 0 || uint64(p.granule) <= lo.pos {
				continue
			}
			m := xiphMark{pos: uint64(p.granule), off: page - audioStart}
			return m, m.pos < hi.pos && m.off < hi.off, nil
		}
		return xiphMark{}, false, nil
	}
	err := x.run()
	if total > 0 {
		x.scale = float64(data) / float64(total)
	}
	return x.peak(), x.scale, err
}
