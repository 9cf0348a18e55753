package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// MPEG-1/2/2.5 audio, layers I–III (ISO/IEC 11172-3, 13818-3), with the
// tags players put around it: ID3v2 in front, APEv2 and ID3v1 at the end.
//
// The sources of duration and peak, best first:
//   - a Xing/Info header (LAME writes one in the first frame): frame count,
//     hence exact duration, trimmed by the LAME tag's encoder delay and
//     padding; its 100-point TOC gives windows (method Index); "Info"
//     marks a CBR file (Nominal);
//   - a Fraunhofer VBRI header: frame count and a TOC of per-segment sizes
//     (Index);
//   - none: if the frames near the start and in the middle share one
//     bitrate, the file is CBR and duration is size/bitrate (Nominal);
//     otherwise every frame header is read (4 bytes each, seeking from
//     header to header) for an exact duration and peak, within the byte
//     budget.

const (
	mp3SearchChunk = 16 << 10 // bytes read at a time looking for the first frame
	mp3SearchMax   = 1 << 20  // junk tolerated before the first frame
	mp3MaxFrame    = 2881     // longest frame: layer II, 160 kbit/s at 8 kHz, padded
	mp3CBRProbe    = 4 << 10  // bytes read mid-file to confirm a constant bitrate
)

func matchMP3(head []byte, ext string) bool {
	if len(head) >= id3HeaderLen && id3Size(head) > 0 {
		return ext != ".flac" && ext != ".wav" && ext != ".aiff" && ext != ".aif"
	}
	if _, ok := mpegHeader(head); ok {
		return true
	}
	switch ext {
	case ".mp3", ".mp2", ".mp1", ".mpga":
		return true
	}
	return false
}

// mpegFrame is a decoded frame header.
type mpegFrame struct {
	version  int // 1, 2, or 25 (MPEG-2.5)
	layer    int // 1, 2, 3
	bitrate  int // bits per second
	rate     int // samples per second
	channels int
	size     int // bytes, header included
	samples  int // per frame
	key      uint32
}

var (
	mpegBitrates = [2][3][16]int{ // [MPEG-1, MPEG-2/2.5][layer-1][index] in kbit/s
		{
			{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0},
			{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0},
			{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0},
		},
		{
			{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0},
			{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
			{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0},
		},
	}
	mpegRates = [3]int{44100, 48000, 32000}
)

// mpegHeader decodes the 4-byte frame header at the start of b.
// Free-format frames (bitrate index 0) are not supported: their size is
// not in the header.
func mpegHeader(b []byte) (mpegFrame, bool) {
	var f mpegFrame
	if len(b) < 4 || b[0] != 0xff || b[1]&0xe0 != 0xe0 {
		return f, false
	}
	v := b[1] >> 3 & 3
	l := b[1] >> 1 & 3
	bi := b[2] >> 4
	si := b[2] >> 2 & 3
	if v == 1 || l == 0 || bi == 0 || bi == 15 || si == 3 || b[3]&3 == 2 {
		return f, false
	}
	f.layer = int(4 - l)
	row := 1
	f.rate = mpegRates[si]
	switch v {
	case 3:
		f.version, row = 1, 0
	case 2:
		f.version, f.rate = 2, f.rate/2
	default:
		f.version, f.rate = 25, f.rate/4
	}
	f.bitrate = mpegBitrates[row][f.layer-1][bi] * 1000
	pad := int(b[2] >> 1 & 1)
	switch f.layer {
	case 1:
		f.samples = 384
		f.size = (12*f.bitrate/f.rate + pad) * 4
	case 2:
		f.samples = 1152
		f.size = 144*f.bitrate/f.rate + pad
	default:
		f.samples = 1152
		f.size = 144*f.bitrate/f.rate + pad
		if f.version != 1 {
			f.samples = 576
			f.size = 72*f.bitrate/f.rate + pad
		}
	}
	f.channels = 2
	if b[3]>>6 == 3 {
		f.channels = 1
	}
	// What must not change from frame to frame: sync, version, layer,
	// sample rate.
	f.key = binary.BigEndian.Uint32(b) & 0xfffe0c00
	return f, f.size >= 4
}

func (f mpegFrame) codec() string {
	return [...]string{"", "mp1", "mp2", "mp3"}[f.layer]
}

func (f mpegFrame) seconds() float64 { return float64(f.samples) / float64(f.rate) }

func parseMP3(s *source, rep *Report) error {
	// Leading ID3v2 tags (some files carry more than one).
	start := int64(0)
	for {
		var h [id3HeaderLen]byte
		if _, err := s.ReadAt(h[:], start); err != nil || id3Size(h[:]) == 0 {
			break
		}
		if err := s.step(); err != nil {
			return err
		}
		n, err := parseID3v2(s, start, rep)
		if err != nil {
			return err
		}
		start += n
	}
	end, err := mp3Tail(s, start, rep)
	if err != nil {
		return err
	}

	first, fh, buf, bufOff, err := mp3FirstFrame(s, start, end)
	if err != nil {
		return err
	}
	rep.Streams = append(rep.Streams, Stream{Type: "audio", Codec: fh.codec(), SampleRate: fh.rate, Channels: fh.channels})

	frame := buf[first-bufOff:]
	frame = frame[:min(len(frame), fh.size)]
	if x, ok := parseXing(frame, fh); ok {
		return mp3Xing(s, rep, x, fh, first, end)
	}
	if v, ok := parseVBRI(frame); ok {
		return mp3VBRI(s, rep, v, fh, first, end)
	}
	return mp3Plain(s, rep, fh, first, end, buf, bufOff)
}

// mp3Tail reads the tags at the end of the file (ID3v1, and an APEv2 tag
// before it or at the very end) and returns where the audio ends.
func mp3Tail(s *source, start int64, rep *Report) (int64, error) {
	end := s.size
	if end-start >= 128 {
		var t [128]byte
		if _, err := s.ReadAt(t[:], end-128); err != nil {
			return 0, fmt.Errorf("id3v1: %w", err)
		}
		if string(t[:3]) == "TAG" {
			mergeTags(&rep.Tags, parseID3v1(t[:]))
			end -= 128
		}
	}
	if end-start >= 32 {
		var f [32]byte
		if _, err := s.ReadAt(f[:], end-32); err != nil {
			return 0, fmt.Errorf("ape footer: %w", err)
		}
		if string(f[:8]) == "APETAGEX" {
			n := int64(binary.LittleEndian.Uint32(f[12:16]))
			if binary.LittleEndian.Uint32(f[20:24])&(1<<31) != 0 {
				n += 32 // a header precedes the items
			}
			if n < 32 || n > end-start {
				return 0, fmt.Errorf("%w: APE tag of %d bytes", ErrCorrupt, n)
			}
			end -= n
		}
	}
	return end, nil
}

// mp3FirstFrame finds the first frame in [start, end): a valid header
// whose successor (or the end of the audio) is where its size says. It
// returns the frame's offset and header and the buffer it read, which
// holds at least the whole frame when the file does.
func mp3FirstFrame(s *source, start, end int64) (int64, mpegFrame, []byte, int64, error) {
	var chunk []byte
	for off := start; off < end && off-start < mp3SearchMax; {
		n := min(end-off, mp3SearchChunk+mp3MaxFrame)
		if chunk == nil {
			chunk = make([]byte, n)
		}
		buf := chunk[:n]
		if _, err := s.ReadAt(buf, off); err != nil {
			return 0, mpegFrame{}, nil, 0, fmt.Errorf("mpeg audio: %w", err)
		}
		for i := 0; i+4 <= len(buf) && i < mp3SearchChunk; i++ {
			if buf[i] != 0xff {
				continue
			}
			f, ok := mpegHeader(buf[i:])
			if !ok {
				continue
			}
			next := off + int64(i) + int64(f.size)
			if next > end {
				continue
			}
			if next == end {
				return off + int64(i), f, buf, off, nil
			}
			var nh [4]byte
			if j := int(next - off); j+4 <= len(buf) {
				copy(nh[:], buf[j:])
			} else if _, err := s.ReadAt(nh[:], next); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
				return 0, mpegFrame{}, nil, 0, err
			}
			if g, ok := mpegHeader(nh[:]); ok && g.key == f.key {
				return off + int64(i), f, buf, off, nil
			}
		}
		if err := s.step(); err != nil {
			return 0, mpegFrame{}, nil, 0, err
		}
		off += mp3SearchChunk
	}
	return 0, mpegFrame{}, nil, 0, fmt.Errorf("%w: no mpeg audio frame", ErrCorrupt)
}

// xing is a Xing/Info header and the LAME tag after it.
type xing struct {
	cbr     bool // "Info": LAME's mark of a constant bitrate
	frames  int64
	bytes   int64
	toc     []byte // 100 entries, or nil
	delay   int    // LAME encoder delay, samples
	padding int    // LAME padding, samples
}

func parseXing(frame []byte, f mpegFrame) (xing, bool) {
	var x xing
	if f.layer != 3 {
		return x, false
	}
	// The tag follows the side information, whose size depends on the
	// version and channel count.
	off := 4 + 32
	switch {
	case f.version == 1 && f.channels == 1:
		off = 4 + 17
	case f.version != 1 && f.channels == 2:
		off = 4 + 17
	case f.version != 1:
		off = 4 + 9
	}
	if len(frame) < off+8 {
		return x, false
	}
	tag := string(frame[off : off+4])
	if tag != "Xing" && tag != "Info" {
		return x, false
	}
	x.cbr = tag == "Info"
	flags := binary.BigEndian.Uint32(frame[off+4:])
	p := off + 8
	if flags&1 != 0 {
		if len(frame) < p+4 {
			return x, false
		}
		x.frames = int64(binary.BigEndian.Uint32(frame[p:]))
		p += 4
	}
	if flags&2 != 0 {
		if len(frame) < p+4 {
			return x, false
		}
		x.bytes = int64(binary.BigEndian.Uint32(frame[p:]))
		p += 4
	}
	if flags&4 != 0 {
		if len(frame) < p+100 {
			return x, false
		}
		x.toc = frame[p : p+100]
		p += 100
	}
	if flags&8 != 0 {
		p += 4
	}
	// LAME tag: 9-byte version string, then the delay and padding, 12 bits
	// each, at byte 21.
	if len(frame) >= p+24 && (string(frame[p:p+4]) == "LAME" || string(frame[p:p+4]) == "Lavc" || string(frame[p:p+4]) == "Lavf") {
		d := frame[p+21:]
		x.delay = int(d[0])<<4 | int(d[1]>>4)
		x.padding = int(d[1]&0x0f)<<8 | int(d[2])
	}
	return x, true
}

func mp3Xing(s *source, rep *Report, x xing, fh mpegFrame, first, end int64) error {
	audioStart := first + int64(fh.size)
	audio := end - audioStart
	if audio <= 0 {
		return fmt.Errorf("%w: no audio after the xing frame", ErrCorrupt)
	}
	if x.bytes > 0 && end-first < x.bytes*9/10 {
		return fmt.Errorf("xing header counts %d bytes, the file holds %d: %w", x.bytes, end-first, io.ErrUnexpectedEOF)
	}
	if x.frames == 0 {
		// Without a frame count the header only says VBR or not.
		if x.cbr {
			return mp3Plain(s, rep, fh, audioStart, end, nil, 0)
		}
		return mp3Scan(s, rep, fh, audioStart, end, 0)
	}
	samples := x.frames*int64(fh.samples) - int64(x.delay) - int64(x.padding)
	if samples <= 0 {
		samples = x.frames * int64(fh.samples)
	}
	rep.Duration = float64(samples) / float64(fh.rate)
	rep.BitrateAvg = int64(float64(audio) * 8 / rep.Duration)
	switch {
	case x.cbr:
		// Info: the frames after this one all have one bitrate.
		var h [4]byte
		if _, err := s.ReadAt(h[:], audioStart); err != nil {
			return fmt.Errorf("mpeg audio: %w", err)
		}
		g, ok := mpegHeader(h[:])
		if !ok {
			g = fh
		}
		rep.BitratePeak, rep.PeakMethod = int64(g.bitrate), Nominal
	case x.toc != nil:
		bytes := x.bytes
		if bytes <= 0 || bytes > s.size {
			bytes = audio
		}
		var marks [101]Packet // cumulative bytes at i% of the duration
		for i := range 100 {
			marks[i] = Packet{Time: float64(i) / 100 * rep.Duration, Bytes: int64(x.toc[i]) * bytes / 256}
		}
		marks[100] = Packet{Time: rep.Duration, Bytes: bytes}
		rep.BitratePeak, rep.PeakMethod = indexPeak(marks[:], s.window.Seconds(), rep.Duration, rep.BitrateAvg), Index
	default:
		return mp3Scan(s, rep, fh, audioStart, end, rep.Duration)
	}
	return nil
}

// indexPeak finds the peak from cumulative byte counts at increasing
// times (a seek table). Inside a segment the bytes are taken as spread
// evenly — the table cannot say where they lie — so the cumulative count
// is a line between marks, and the peak is the highest rate over any
// window of W on that line. A sliding window's rate on a piecewise-linear
// count is highest with one of its ends on a mark, so only those windows
// are measured.
//
// Counting a whole segment's bytes over W instead (never low) overstates
// the peak by the segment's length over W: a Xing table has 100 marks, so
// in a 20-minute file each segment is 12 s and the peak came out three
// times the real one, which reserved three times the uplink the stream
// needs. Spread evenly, a peak shorter than a segment is averaged with
// the rest of it; the burst and the pacing factor cover that.
func indexPeak(marks []Packet, w, duration float64, avg int64) int64 {
	if duration < w || len(marks) < 2 {
		return avg
	}
	// at returns the cumulative bytes at time t, on the line between the
	// marks around it.
	at := func(t float64) float64 {
		i := sort.Search(len(marks), func(i int) bool { return marks[i].Time >= t })
		switch {
		case i == 0:
			return float64(marks[0].Bytes)
		case i == len(marks):
			return float64(marks[len(marks)-1].Bytes)
		}
		a, b := marks[i-1], marks[i]
		if b.Time <= a.Time {
			return float64(b.Bytes)
		}
		f := (t - a.Time) / (b.Time - a.Time)
		return float64(a.Bytes) + f*float64(b.Bytes-a.Bytes)
	}
	first, last := marks[0].Time, marks[len(marks)-1].Time
	peak := 0.0
	for _, m := range marks {
		if m.Time+w <= last {
			peak = max(peak, (at(m.Time+w)-float64(m.Bytes))*8/w)
		}
		if m.Time-w >= first {
			peak = max(peak, (float64(m.Bytes)-at(m.Time-w))*8/w)
		}
	}
	return max(int64(peak), avg)
}

// vbri is a Fraunhofer VBRI header.
type vbri struct {
	frames    int64
	bytes     int64
	entries   int
	scale     int64
	entrySize int
	perEntry  int64
	tocOff    int // in the frame
}

func parseVBRI(frame []byte) (vbri, bool) {
	var v vbri
	const off = 4 + 32
	if len(frame) < off+26 || string(frame[off:off+4]) != "VBRI" {
		return v, false
	}
	b := frame[off:]
	v.bytes = int64(binary.BigEndian.Uint32(b[10:]))
	v.frames = int64(binary.BigEndian.Uint32(b[14:]))
	v.entries = int(binary.BigEndian.Uint16(b[18:]))
	v.scale = int64(binary.BigEndian.Uint16(b[20:]))
	v.entrySize = int(binary.BigEndian.Uint16(b[22:]))
	v.perEntry = int64(binary.BigEndian.Uint16(b[24:]))
	v.tocOff = off + 26
	return v, v.frames > 0
}

func mp3VBRI(s *source, rep *Report, v vbri, fh mpegFrame, first, end int64) error {
	audioStart := first + int64(fh.size)
	audio := end - audioStart
	if audio <= 0 {
		return fmt.Errorf("%w: no audio after the vbri frame", ErrCorrupt)
	}
	frameTime := float64(fh.samples) / float64(fh.rate)
	rep.Duration = float64(v.frames) * frameTime
	rep.BitrateAvg = int64(float64(audio) * 8 / rep.Duration)
	if v.entries == 0 || v.entrySize < 1 || v.entrySize > 4 || v.perEntry == 0 || v.scale == 0 {
		return mp3Scan(s, rep, fh, audioStart, end, rep.Duration)
	}
	// The TOC is at most 65,535 entries of 4 bytes: bounded, read at once.
	toc := make([]byte, v.entries*v.entrySize)
	if _, err := s.ReadAt(toc, first+int64(v.tocOff)); err != nil {
		return fmt.Errorf("vbri toc: %w", err)
	}
	marks := make([]Packet, 0, v.entries+1)
	marks = append(marks, Packet{})
	var sum int64
	for i := range v.entries {
		var e int64
		for _, c := range toc[i*v.entrySize : (i+1)*v.entrySize] {
			e = e<<8 | int64(c)
		}
		sum += e * v.scale
		t := float64(min(int64(i+1)*v.perEntry, v.frames)) * frameTime
		marks = append(marks, Packet{Time: t, Bytes: sum})
	}
	rep.BitratePeak, rep.PeakMethod = indexPeak(marks, s.window.Seconds(), rep.Duration, rep.BitrateAvg), Index
	return nil
}

// mp3Plain handles a file without a VBR header: CBR if the frames read so
// far and a sample from the middle share one bitrate, else a frame scan.
func mp3Plain(s *source, rep *Report, fh mpegFrame, first, end int64, buf []byte, bufOff int64) error {
	cbr := true
	if buf != nil {
		for off := first; ; {
			i := off - bufOff
			if i+4 > int64(len(buf)) {
				break
			}
			f, ok := mpegHeader(buf[i:])
			if !ok || f.key != fh.key {
				break
			}
			if f.bitrate != fh.bitrate {
				cbr = false
				break
			}
			off += int64(f.size)
		}
	}
	if cbr {
		if mid := first + (end-first)/2; end-mid > mp3CBRProbe {
			cbr = sameBitrate(s, mid, fh)
		}
	}
	if !cbr {
		return mp3Scan(s, rep, fh, first, end, 0)
	}
	audio := end - first
	rep.Duration = float64(audio) * 8 / float64(fh.bitrate)
	rep.BitrateAvg = int64(fh.bitrate)
	rep.BitratePeak, rep.PeakMethod = int64(fh.bitrate), Nominal
	return nil
}

// sameBitrate reports whether the first two consecutive frames found at
// off have fh's bitrate.
func sameBitrate(s *source, off int64, fh mpegFrame) bool {
	buf := make([]byte, mp3CBRProbe)
	if _, err := s.ReadAt(buf, off); err != nil {
		return true // cannot tell: keep the first frames' verdict
	}
	for i := 0; i+4 <= len(buf); i++ {
		if buf[i] != 0xff {
			continue
		}
		f, ok := mpegHeader(buf[i:])
		if !ok || f.key != fh.key || i+f.size+4 > len(buf) {
			continue
		}
		g, ok := mpegHeader(buf[i+f.size:])
		if !ok || g.key != fh.key {
			continue
		}
		return f.bitrate == fh.bitrate && g.bitrate == fh.bitrate
	}
	return true
}

// mp3Scan reads every frame header from first to end, for an exact
// duration (unless known > 0) and peak. A file whose scan would not fit
// the byte budget gets an estimate from its first frames instead, with
// method Nominal.
func mp3Scan(s *source, rep *Report, fh mpegFrame, first, end int64, known float64) error {
	// Budget check up front: 4 bytes per frame, frames no smaller than
	// the smallest this stream's bitrates allow. Keep a margin for resyncs.
	minSize := int64(fh.size) * 8 / int64(fh.bitrate/1000) // size at 8 kbit/s-ish
	minSize = max(minSize, 24)
	if need := (end - first) / minSize * 4; need > s.budget/2 || (end-first)/minSize > int64(s.steps) {
		return mp3Estimate(rep, fh, first, end, known)
	}
	m := newPeakMeter(s.window.Seconds())
	frameTime := fh.seconds()
	var h [4]byte
	var frames, audio int64
	for off := first; off+4 <= end; {
		if err := s.step(); err != nil {
			return err
		}
		if _, err := s.ReadAt(h[:], off); err != nil {
			return fmt.Errorf("mpeg frame at %d: %w", off, err)
		}
		f, ok := mpegHeader(h[:])
		if !ok || f.key != fh.key {
			next, err := mp3Resync(s, off+1, end, fh)
			if err != nil {
				return err
			}
			if next < 0 {
				break // junk at the end
			}
			off = next
			continue
		}
		size := min(int64(f.size), end-off)
		m.add(Packet{Time: float64(frames) * frameTime, Bytes: size})
		frames++
		audio += size
		off += int64(f.size)
	}
	if frames == 0 {
		return fmt.Errorf("%w: no mpeg audio frames", ErrCorrupt)
	}
	if known > 0 {
		rep.Duration = known
	} else {
		rep.Duration = float64(frames) * frameTime
	}
	rep.BitrateAvg = int64(float64(audio) * 8 / rep.Duration)
	rep.BitratePeak, rep.PeakMethod = m.result(rep.Duration), Exact
	return nil
}

// mp3Resync finds the next frame of the stream at or after off, reading
// a chunk; -1 if the chunk holds none.
func mp3Resync(s *source, off, end int64, fh mpegFrame) (int64, error) {
	n := min(end-off, mp3SearchChunk)
	if n < 4 {
		return -1, nil
	}
	buf := make([]byte, n)
	if _, err := s.ReadAt(buf, off); err != nil {
		return 0, fmt.Errorf("mpeg resync: %w", err)
	}
	for i := 0; i+4 <= len(buf); i++ {
		i2 := bytes.IndexByte(buf[i:], 0xff)
		if i2 < 0 {
			break
		}
		i += i2
		if f, ok := mpegHeader(buf[i:]); ok && f.key == fh.key {
			return off + int64(i), nil
		}
	}
	return -1, nil
}

// mp3Estimate: the file is too big to scan within the budget; its
// duration is estimated from the first frame's bitrate.
func mp3Estimate(rep *Report, fh mpegFrame, first, end int64, known float64) error {
	audio := end - first
	if known > 0 {
		rep.Duration = known
	} else {
		rep.Duration = float64(audio) * 8 / float64(fh.bitrate)
	}
	rep.BitrateAvg = int64(float64(audio) * 8 / rep.Duration)
	rep.BitratePeak, rep.PeakMethod = max(rep.BitrateAvg, int64(fh.bitrate)), Nominal
	return nil
}
