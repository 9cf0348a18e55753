package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
)

// ASF: WMA and WMV. The Header Object holds the File Properties (play
// duration, preroll, packet size), one Stream Properties Object per stream
// (WAVEFORMATEX or BITMAPINFOHEADER), the Content Description and Extended
// Content Description tags, and a Header Extension whose Extended Stream
// Properties, Metadata and Metadata Library objects carry more. The data
// packets have a fixed size and open with their payloads' headers, which
// give each media object's size and presentation time: a walk over those
// headers gives the exact peak (a file the budget covers is read in large
// pieces, a larger one a few bytes a packet). A walk the budget cannot
// finish falls back to the header's duration, the File Properties' maximum
// bitrate and, for the average, the payload share of the packets walked.

const (
	asfMaxPacket = 1 << 20    // largest data packet size believed
	asfMaxValue  = 64 << 10   // largest tag value read
	asfMaxPic    = 1 << 10    // bytes of a WM/Picture value read to find its data
	asfReadAhead = 4 << 10    // the header cursor reads this much at once
	asfPktAhead  = 32         // the packet cursor reads this much at once...
	asfWhole     = 64 << 10   // ...or this much, when the budget covers the whole file
	asfMaxDepth  = 2          // Header Extension inside the header, and no deeper
	asf100ns     = 10_000_000 // ASF times count 100 ns units
)

// The objects' GUIDs as stored (the first three fields little-endian).
var (
	asfHeaderGUID     = asfGUID("75B22630-668E-11CF-A6D9-00AA0062CE6C")
	asfDataGUID       = asfGUID("75B22636-668E-11CF-A6D9-00AA0062CE6C")
	asfFilePropsGUID  = asfGUID("8CABDCA1-A947-11CF-8EE4-00C00C205365")
	asfStreamGUID     = asfGUID("B7DC0791-A9B7-11CF-8EE6-00C00C205365")
	asfHeaderExtGUID  = asfGUID("5FBF03B5-A92E-11CF-8EE3-00C00C205365")
	asfContentGUID    = asfGUID("75B22633-668E-11CF-A6D9-00AA0062CE6C")
	asfExtContentGUID = asfGUID("D2D0A440-E307-11D2-97F0-00A0C95EA850")
	asfMetadataGUID   = asfGUID("C5F8CBEA-5BAF-4877-8467-AA8C44FA4CCA")
	asfMetaLibGUID    = asfGUID("44231C94-9498-49D1-A141-1D134E457054")
	asfExtStreamGUID  = asfGUID("14E6A5CB-C672-4332-8399-A96952065B5A")
	asfAudioGUID      = asfGUID("F8699E40-5B4D-11CF-A8FD-00805F5C442B")
	asfVideoGUID      = asfGUID("BC19EFC0-5B4D-11CF-A8FD-00805F5C442B")
)

// asfGUID turns the textual form of a GUID into its 16 stored bytes.
func asfGUID(s string) [16]byte {
	h := strings.ReplaceAll(s, "-", "")
	var raw [16]byte
	for i := range raw {
		v, _ := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		raw[i] = byte(v)
	}
	var g [16]byte
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g
}

func matchASF(head []byte, _ string) bool {
	return len(head) >= 16 && [16]byte(head[:16]) == asfHeaderGUID
}

// asfStream is one audio or video stream, by stream number.
type asfStream struct {
	stream   Stream
	avgBytes int64   // audio: WAVEFORMATEX nAvgBytesPerSec
	frame    float64 // video: seconds per frame, from the Extended Stream Properties
	// Counted by the packet walk.
	end           float64 // end of the last media object seen
	objects       int64
	first, latest float64 // presentation times
}

// asfFile is what the header says.
type asfFile struct {
	playDur    int64 // 100 ns units, preroll included
	preroll    int64 // ms
	packets    int64
	packetSize int64
	maxBitrate int64 // bits per second, as the File Properties state
	broadcast  bool
	order      []int // stream numbers of audio and video streams, in header order
	streams    map[int]*asfStream
	tags       map[string][]string // field (Tags.set) -> values
	cover      *Cover
	coverFront bool
}

func parseASF(s *source, rep *Report) error {
	var h [30]byte
	if _, err := s.ReadAt(h[:], 0); err != nil {
		return fmt.Errorf("asf header: %w", err)
	}
	hdrSize := int64(binary.LittleEndian.Uint64(h[16:]))
	if hdrSize < 30 || hdrSize > s.size {
		return fmt.Errorf("%w: asf header of %d bytes in a file of %d", ErrCorrupt, hdrSize, s.size)
	}
	f := &asfFile{streams: map[int]*asfStream{}, tags: map[string][]string{}}
	c := &asfCursor{s: s, limit: hdrSize, ahead: asfReadAhead}
	if err := f.objects(c, 30, hdrSize, 0); err != nil {
		return err
	}
	if f.packetSize == 0 && f.playDur == 0 {
		return fmt.Errorf("%w: asf without file properties", ErrCorrupt)
	}
	for _, n := range f.order {
		rep.Streams = append(rep.Streams, f.streams[n].stream)
	}
	for _, field := range []string{"title", "artist", "album", "album_artist", "track", "disc", "year", "genre"} {
		rep.Tags.set(field, f.tags[field])
	}
	if f.tags["track"] == nil && len(f.tags["track0"]) > 0 {
		if n, err := strconv.Atoi(f.tags["track0"][0]); err == nil && n >= 0 {
			rep.Tags.Track = n + 1 // WM/Track counts from 0
		}
	}
	rep.Cover = f.cover

	// The header's duration: ffmpeg's too, play duration less preroll.
	stated := math.Round((float64(f.playDur)/asf100ns-float64(f.preroll)/1000)*1e7) / 1e7
	if f.broadcast || stated < 0.001 { // less than a ms is no duration
		stated = 0
	}

	// The Data Object follows the header: GUID, size, file ID, packet
	// count, reserved: 50 bytes, then the packets.
	var d [50]byte
	if _, err := s.ReadAt(d[:], hdrSize); err != nil {
		return fmt.Errorf("asf data object: %w", err)
	}
	if [16]byte(d[:16]) != asfDataGUID {
		return fmt.Errorf("%w: no data object after the asf header", ErrCorrupt)
	}
	dataEnd := s.size
	if n := int64(binary.LittleEndian.Uint64(d[16:])); n >= 50 && n <= s.size-hdrSize {
		dataEnd = hdrSize + n
	}
	pkts := (dataEnd - hdrSize - 50) / max(f.packetSize, 1)
	if n := int64(binary.LittleEndian.Uint64(d[40:])); n > 0 && n < pkts {
		pkts = n
	}

	// Presentation times run ahead of the send order by up to the
	// preroll.
	m := newPeakMeter(s.window.Seconds())
	w := &asfWalk{f: f, m: &sortedMeter{m: m, span: float64(min(f.preroll, 60_000))/1000 + 1}}
	err := w.walk(s, hdrSize+50, pkts)
	w.m.flush()
	switch {
	case err == nil && m.n > 0:
		for _, st := range f.streams {
			rep.Duration = max(rep.Duration, st.end)
		}
		// Times count ms: round off the float noise.
		rep.Duration = math.Round((rep.Duration-max(w.first, 0))*1e6) / 1e6
		if rep.Duration < 0.001 { // less than a ms is no duration
			rep.Duration = stated
		}
		if rep.Duration < 0.001 {
			return fmt.Errorf("%w: asf media of no duration", ErrCorrupt)
		}
		rep.BitrateAvg = bitRate(float64(m.total), rep.Duration)
		rep.BitratePeak = m.result(rep.Duration)
		rep.PeakMethod = Exact
		return nil
	case err != nil && !errors.Is(err, ErrBudget) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrCorrupt):
		return err // the context ended
	}
	// The walk found nothing, or stopped early (budget, a cut or damaged
	// packet): the stated duration, and the media bytes estimated from the
	// share of payload in the packets walked.
	if stated <= 0 {
		if w.walked > 0 && (errors.Is(err, ErrBudget) || errors.Is(err, io.ErrUnexpectedEOF)) {
			// Sound packets, but a broadcast header (no duration) and
			// more packets than the limits allow: size-only (see Probe).
			return fmt.Errorf("asf broadcast: %w", errSizeOnly)
		}
		return fmt.Errorf("%w: asf header states no duration", ErrCorrupt)
	}
	rep.Duration = stated
	media := float64(pkts * f.packetSize)
	if w.walked > 0 && w.payloadBytes > 0 {
		media = float64(w.payloadBytes) / float64(w.walked*f.packetSize) * media
	}
	rep.BitrateAvg = bitRate(media, stated)
	// The stated maximum is the streams' nominal rates summed (ffmpeg's
	// are within 2 % of the fixtures' peaks); the packets walked can only
	// show more.
	rep.BitratePeak = max(rep.BitrateAvg, f.maxBitrate, m.result(stated))
	rep.PeakMethod = Nominal
	return nil
}

// objects reads the header objects in [off, end).
func (f *asfFile) objects(c *asfCursor, off, end int64, depth int) error {
	for off+24 <= end {
		if err := c.s.step(); err != nil {
			return err
		}
		c.seek(off, end)
		b, err := c.bytes(24)
		if err != nil {
			return fmt.Errorf("asf object at %d: %w", off, err)
		}
		guid := [16]byte(b[:16])
		size := int64(binary.LittleEndian.Uint64(b[16:]))
		if size < 24 || size > end-off {
			return fmt.Errorf("%w: asf object of %d bytes at %d", ErrCorrupt, size, off)
		}
		body, bodyEnd := off+24, off+size
		c.seek(body, bodyEnd)
		switch guid {
		case asfFilePropsGUID:
			err = f.fileProps(c)
		case asfStreamGUID:
			err = f.streamProps(c)
		case asfContentGUID:
			err = f.content(c)
		case asfExtContentGUID:
			err = f.extContent(c)
		case asfMetadataGUID, asfMetaLibGUID:
			err = f.metadata(c)
		case asfExtStreamGUID:
			err = f.extStream(c, depth)
		case asfHeaderExtGUID:
			// Reserved GUID and field, the data size, then objects.
			if depth < asfMaxDepth && size >= 46 {
				err = f.objects(c, body+22, bodyEnd, depth+1)
			}
		}
		// A damaged tag object costs the tags, not the probe.
		if err != nil && (errors.Is(err, ErrBudget) || c.s.ctx.Err() != nil ||
			guid == asfFilePropsGUID || guid == asfStreamGUID) {
			return err
		}
		off = bodyEnd
	}
	return nil
}

func (f *asfFile) fileProps(c *asfCursor) error {
	b, err := c.bytes(80)
	if err != nil {
		return fmt.Errorf("asf file properties: %w", err)
	}
	f.packets = int64(binary.LittleEndian.Uint64(b[32:]))
	f.playDur = int64(binary.LittleEndian.Uint64(b[40:]) & (1<<62 - 1))
	f.preroll = int64(binary.LittleEndian.Uint64(b[56:]) & (1<<62 - 1))
	f.broadcast = b[64]&1 != 0
	f.maxBitrate = int64(binary.LittleEndian.Uint32(b[76:]))
	minPkt := int64(binary.LittleEndian.Uint32(b[68:]))
	maxPkt := int64(binary.LittleEndian.Uint32(b[72:]))
	if minPkt == maxPkt && minPkt > 0 && minPkt <= asfMaxPacket {
		f.packetSize = minPkt
	}
	return nil
}

func (f *asfFile) streamProps(c *asfCursor) error {
	b, err := c.bytes(54)
	if err != nil {
		return fmt.Errorf("asf stream properties: %w", err)
	}
	kind := [16]byte(b[:16])
	typeLen := int64(binary.LittleEndian.Uint32(b[40:]))
	num := int(binary.LittleEndian.Uint16(b[48:]) & 0x7f)
	if kind != asfAudioGUID && kind != asfVideoGUID {
		return nil
	}
	if _, dup := f.streams[num]; dup {
		return nil
	}
	td, err := c.bytes(min(typeLen, 256))
	if err != nil {
		return fmt.Errorf("asf stream properties: %w", err)
	}
	st := &asfStream{}
	if kind == asfAudioGUID {
		st.stream = Stream{Type: "audio"}
		if len(td) >= 16 {
			wf := wavFormat{
				tag:      binary.LittleEndian.Uint16(td[0:]),
				channels: int(binary.LittleEndian.Uint16(td[2:])),
				rate:     int(binary.LittleEndian.Uint32(td[4:])),
				byteRate: int64(binary.LittleEndian.Uint32(td[8:])),
				align:    int(binary.LittleEndian.Uint16(td[12:])),
				bits:     int(binary.LittleEndian.Uint16(td[14:])),
			}
			if wf.tag == 0xfffe && len(td) >= 26 {
				wf.tag = binary.LittleEndian.Uint16(td[24:])
			}
			st.avgBytes = wf.byteRate
			st.stream.Codec = asfAudioCodec(wf)
			st.stream.SampleRate, st.stream.Channels = wf.rate, wf.channels
		}
	} else {
		// Encoded width and height, a flags byte, the format data size,
		// then a BITMAPINFOHEADER (its compression at byte 16).
		st.stream = Stream{Type: "video"}
		if len(td) >= 31 {
			st.stream.Width = int(binary.LittleEndian.Uint32(td[0:]) & 0xffff)
			st.stream.Height = int(binary.LittleEndian.Uint32(td[4:]) & 0xffff)
			st.stream.Codec = asfVideoCodec(string(td[27:31]))
		}
	}
	f.streams[num] = st
	f.order = append(f.order, num)
	return nil
}

// asfAudioCodec names a WAVEFORMATEX tag as ffprobe does.
func asfAudioCodec(f wavFormat) string {
	switch f.tag {
	case 0x160:
		return "wmav1"
	case 0x161:
		return "wmav2"
	case 0x162:
		return "wmapro"
	case 0x163:
		return "wmalossless"
	case 0x0a:
		return "wmavoice"
	case 0xff, 0x1610:
		return "aac"
	}
	return wavCodec(f)
}

// asfVideoCodec names a BITMAPINFOHEADER compression as ffprobe does.
func asfVideoCodec(fourcc string) string {
	switch strings.ToUpper(fourcc) {
	case "WMV1":
		return "wmv1"
	case "WMV2":
		return "wmv2"
	case "WMV3", "WMVP":
		return "wmv3"
	case "WVC1", "WMVA", "WVP2":
		return "vc1"
	case "MP43", "DIV3":
		return "msmpeg4v3"
	case "MP42", "DIV2":
		return "msmpeg4v2"
	case "MPG4":
		return "msmpeg4v1"
	case "MP4S", "M4S2":
		return "mpeg4"
	}
	return aviVideoCodec(fourcc)
}

// extStream reads an Extended Stream Properties Object: the frame time,
// and the Stream Properties Object some muxers hide at its end.
func (f *asfFile) extStream(c *asfCursor, depth int) error {
	b, err := c.bytes(64)
	if err != nil {
		return fmt.Errorf("asf extended stream properties: %w", err)
	}
	num := int(binary.LittleEndian.Uint16(b[48:]))
	perFrame := int64(binary.LittleEndian.Uint64(b[56:]))
	names := int(binary.LittleEndian.Uint16(b[60:]))
	exts := int(binary.LittleEndian.Uint16(b[62:]))
	for range names { // language index, name length, name
		n, err := c.bytes(4)
		if err != nil {
			return err
		}
		if err := c.skip(int64(binary.LittleEndian.Uint16(n[2:]))); err != nil {
			return err
		}
	}
	for range exts { // extension GUID, data size, info length, info
		n, err := c.bytes(22)
		if err != nil {
			return err
		}
		if err := c.skip(int64(binary.LittleEndian.Uint32(n[18:]))); err != nil {
			return err
		}
	}
	if c.off+24 <= c.end {
		if err := f.objects(c, c.off, c.end, depth); err != nil {
			return err
		}
	}
	if st := f.streams[num]; st != nil && st.stream.Type == "video" && perFrame > 0 {
		st.frame = float64(perFrame) / asf100ns
		st.stream.FrameRate = float64(asf100ns) / float64(perFrame)
	}
	return nil
}

// content reads a Content Description Object: five lengths, then title,
// author, copyright, description and rating in UTF-16.
func (f *asfFile) content(c *asfCursor) error {
	b, err := c.bytes(10)
	if err != nil {
		return err
	}
	var lens [5]int64
	for i := range lens {
		lens[i] = int64(binary.LittleEndian.Uint16(b[2*i:]))
	}
	for i, field := range []string{"title", "artist"} {
		v, err := c.bytes(lens[i])
		if err != nil {
			return err
		}
		f.tag(field, utf16String(v))
	}
	return nil
}

// extContent reads an Extended Content Description Object: a count, then
// descriptors of name length, name, value type, value length and value.
func (f *asfFile) extContent(c *asfCursor) error {
	b, err := c.bytes(2)
	if err != nil {
		return err
	}
	for range binary.LittleEndian.Uint16(b) {
		if err := c.s.step(); err != nil {
			return err
		}
		b, err := c.bytes(2)
		if err != nil {
			return err
		}
		name, err := c.bytes(int64(binary.LittleEndian.Uint16(b)))
		if err != nil {
			return err
		}
		key := utf16String(name)
		b, err = c.bytes(4)
		if err != nil {
			return err
		}
		typ := binary.LittleEndian.Uint16(b)
		if err := f.value(c, key, typ, int64(binary.LittleEndian.Uint16(b[2:]))); err != nil {
			return err
		}
	}
	return nil
}

// metadata reads a Metadata or Metadata Library Object: a count, then
// records of language, stream, name length, type, data length, name, data.
func (f *asfFile) metadata(c *asfCursor) error {
	b, err := c.bytes(2)
	if err != nil {
		return err
	}
	for range binary.LittleEndian.Uint16(b) {
		if err := c.s.step(); err != nil {
			return err
		}
		b, err := c.bytes(12)
		if err != nil {
			return err
		}
		typ := binary.LittleEndian.Uint16(b[6:])
		size := int64(binary.LittleEndian.Uint32(b[8:]))
		name, err := c.bytes(int64(binary.LittleEndian.Uint16(b[4:])))
		if err != nil {
			return err
		}
		if err := f.value(c, utf16String(name), typ, size); err != nil {
			return err
		}
	}
	return nil
}

// value reads one tag value of type typ and size bytes at the cursor, and
// leaves the cursor after it.
func (f *asfFile) value(c *asfCursor, key string, typ uint16, size int64) error {
	start, next := c.off, c.off+size
	if next > c.end {
		return fmt.Errorf("%w: asf tag value of %d bytes", ErrCorrupt, size)
	}
	field := asfTagField(key)
	if strings.EqualFold(key, "WM/Picture") && typ == 1 {
		b, err := c.bytes(min(size, asfMaxPic))
		if err != nil {
			return err
		}
		f.picture(b, start, size)
	} else if field != "" && size <= asfMaxValue {
		b, err := c.bytes(size)
		if err != nil {
			return err
		}
		var v string
		switch {
		case typ == 0:
			v = utf16String(b)
		case typ >= 2 && typ <= 5 && len(b) <= 8:
			var n uint64
			for i := len(b) - 1; i >= 0; i-- {
				n = n<<8 | uint64(b[i])
			}
			v = strconv.FormatUint(n, 10)
		}
		f.tag(field, v)
	}
	c.seek(next, c.end)
	return nil
}

// asfTagField maps an ASF tag name to a Tags field ("track0": WM/Track,
// which counts from 0).
func asfTagField(key string) string {
	switch strings.ToLower(key) {
	case "title":
		return "title"
	case "author", "artist":
		return "artist"
	case "wm/albumtitle":
		return "album"
	case "wm/albumartist":
		return "album_artist"
	case "wm/tracknumber":
		return "track"
	case "wm/track":
		return "track0"
	case "wm/partofset":
		return "disc"
	case "wm/year", "date":
		return "year"
	case "wm/genre":
		return "genre"
	}
	return ""
}

func (f *asfFile) tag(field, v string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return
	}
	for _, have := range f.tags[field] {
		if have == v {
			return
		}
	}
	f.tags[field] = append(f.tags[field], v)
}

// picture reads the start b of a WM/Picture value at off of size bytes:
// picture type, data length, MIME type and description (NUL-terminated
// UTF-16), then the data. A front cover (type 3) wins over other pictures.
func (f *asfFile) picture(b []byte, off, size int64) {
	if len(b) < 5 || f.coverFront {
		return
	}
	front := b[0] == 3
	n := int64(binary.LittleEndian.Uint32(b[1:]))
	mime, rest, ok := utf16Z(b[5:])
	if !ok {
		return
	}
	if _, rest, ok = utf16Z(rest); !ok {
		return
	}
	data := off + int64(len(b)-len(rest))
	if n <= 0 || n > off+size-data {
		return
	}
	if f.cover == nil || front {
		f.cover = &Cover{MIME: mime, Offset: data, Size: n}
		f.coverFront = front
	}
}

// utf16String decodes little-endian UTF-16 up to its first NUL.
func utf16String(b []byte) string {
	s, _, _ := utf16Z(b)
	return s
}

// utf16Z decodes little-endian UTF-16 up to a NUL and returns what follows
// it; ok is false without a NUL.
func utf16Z(b []byte) (s string, rest []byte, ok bool) {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			return strings.ToValidUTF8(string(utf16.Decode(u)), "\uFFFD"), b[i+2:], true
		}
		u = append(u, c)
	}
	return strings.ToValidUTF8(string(utf16.Decode(u)), "\uFFFD"), nil, false
}

// asfCursor reads forward through [off, end) of the source, ahead bytes
// at a time, so a run of small fields costs one read. FLV's tag walk uses
// it too.
type asfCursor struct {
	s      *source
	off    int64
	end    int64 // the current object's end
	limit  int64 // reads ahead stop here
	ahead  int64
	buf    []byte
	bufOff int64
}

func (c *asfCursor) seek(off, end int64) { c.off, c.end = off, end }

// bytes returns the next n bytes and moves past them; the slice is valid
// until the next call.
func (c *asfCursor) bytes(n int64) ([]byte, error) {
	if n < 0 || c.off+n > c.end {
		return nil, fmt.Errorf("%w: asf field of %d bytes past its object", ErrCorrupt, n)
	}
	if c.off < c.bufOff || c.off+n > c.bufOff+int64(len(c.buf)) {
		want := min(max(n, c.ahead), max(c.limit-c.off, n))
		if int64(cap(c.buf)) < want {
			c.buf = make([]byte, want)
		}
		c.buf = c.buf[:want]
		if _, err := c.s.ReadAt(c.buf, c.off); err != nil {
			c.buf = c.buf[:0]
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		c.bufOff = c.off
	}
	b := c.buf[c.off-c.bufOff : c.off-c.bufOff+n]
	c.off += n
	return b, nil
}

func (c *asfCursor) skip(n int64) error {
	if n < 0 || c.off+n > c.end {
		return fmt.Errorf("%w: asf field of %d bytes past its object", ErrCorrupt, n)
	}
	c.off += n
	return nil
}

// varLen reads a field whose length is coded in two bits: none, byte,
// word or dword.
func (c *asfCursor) varLen(code byte) (int64, error) {
	n := [4]int64{0, 1, 2, 4}[code&3]
	if n == 0 {
		return 0, nil
	}
	b, err := c.bytes(n)
	if err != nil {
		return 0, err
	}
	var v int64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | int64(b[i])
	}
	return v, nil
}

// asfWalk reads the data packets' payload headers.
type asfWalk struct {
	f            *asfFile
	m            *sortedMeter
	walked       int64   // packets read
	payloadBytes int64   // bytes of media payloads in them
	first        float64 // earliest presentation time
}

func (w *asfWalk) walk(s *source, off, pkts int64) error {
	if w.f.packetSize == 0 {
		return fmt.Errorf("%w: asf packets of no fixed size", ErrCorrupt)
	}
	w.first = -1
	c := &asfCursor{s: s, limit: s.size, ahead: asfPktAhead}
	if s.size-off <= s.budget/2 {
		// Large reads: few calls, and the budget allows every byte.
		c.ahead = asfWhole
	}
	for i := range pkts {
		if err := s.step(); err != nil {
			return err
		}
		p := off + i*w.f.packetSize
		c.seek(p, min(p+w.f.packetSize, s.size))
		done := w.payloadBytes
		if err := w.packet(c, p); err != nil {
			w.payloadBytes = done // count whole packets only
			return fmt.Errorf("asf packet %d: %w", i, err)
		}
		w.walked++
	}
	return nil
}

// packet reads the payload parsing information and the payload headers
// of the packet at p (ASF 5.2).
func (w *asfWalk) packet(c *asfCursor, p int64) error {
	b, err := c.bytes(1)
	if err != nil {
		return err
	}
	flags := b[0]
	if flags&0x80 != 0 { // error correction data, then the flags
		if err := c.skip(int64(flags & 0x0f)); err != nil {
			return err
		}
		if b, err = c.bytes(1); err != nil {
			return err
		}
		flags = b[0]
	}
	if b, err = c.bytes(1); err != nil {
		return err
	}
	props := b[0]
	length, err := c.varLen(flags >> 5)
	if err != nil {
		return err
	}
	if _, err := c.varLen(flags >> 1); err != nil { // sequence
		return err
	}
	padding, err := c.varLen(flags >> 3)
	if err != nil {
		return err
	}
	if err := c.skip(6); err != nil { // send time, duration
		return err
	}
	if length > 0 && length < w.f.packetSize {
		padding += w.f.packetSize - length
	}
	end := p + w.f.packetSize - padding
	if end < c.off || end > c.end {
		return fmt.Errorf("%w: asf packet padding of %d bytes", ErrCorrupt, padding)
	}
	c.end = end
	payloads, lenType := 1, byte(0)
	if flags&1 != 0 {
		if b, err = c.bytes(1); err != nil {
			return err
		}
		payloads, lenType = int(b[0]&0x3f), b[0]>>6
		if lenType == 0 {
			lenType = 2 // ffmpeg's reading of a zero length type
		}
	}
	for range payloads {
		if err := c.s.step(); err != nil {
			return err
		}
		if err := w.payload(c, props, flags&1 != 0, lenType); err != nil {
			return err
		}
	}
	return nil
}

// payload reads one payload header and moves past its data.
func (w *asfWalk) payload(c *asfCursor, props byte, multiple bool, lenType byte) error {
	b, err := c.bytes(1)
	if err != nil {
		return err
	}
	st := w.f.streams[int(b[0]&0x7f)]
	if _, err := c.varLen(props >> 4); err != nil { // media object number
		return err
	}
	offset, err := c.varLen(props >> 2)
	if err != nil {
		return err
	}
	repLen, err := c.varLen(props)
	if err != nil {
		return err
	}
	var objSize, pres int64
	var delta int64
	switch {
	case repLen >= 8:
		r, err := c.bytes(8)
		if err != nil {
			return err
		}
		objSize = int64(binary.LittleEndian.Uint32(r))
		pres = int64(binary.LittleEndian.Uint32(r[4:]))
		if err := c.skip(repLen - 8); err != nil {
			return err
		}
	case repLen == 1: // compressed payload: offset is the time
		r, err := c.bytes(1)
		if err != nil {
			return err
		}
		pres, delta = offset, int64(r[0])
	default:
		if err := c.skip(repLen); err != nil {
			return err
		}
	}
	size := c.end - c.off
	if multiple {
		if size, err = c.varLen(lenType); err != nil {
			return err
		}
	}
	dataEnd := c.off + size
	if dataEnd > c.end {
		return fmt.Errorf("%w: asf payload of %d bytes", ErrCorrupt, size)
	}
	if st != nil {
		w.payloadBytes += size
	}
	switch {
	case st == nil:
	case repLen == 1:
		// Sub-payloads, each a whole media object: a length byte, then
		// the object.
		for i := int64(0); c.off < dataEnd; i++ {
			if err := c.s.step(); err != nil {
				return err
			}
			n, err := c.bytes(1)
			if err != nil {
				return err
			}
			if c.off+int64(n[0]) > dataEnd {
				return fmt.Errorf("%w: asf sub-payload past its payload", ErrCorrupt)
			}
			w.object(st, pres+i*delta, int64(n[0]))
			c.off += int64(n[0])
		}
	case repLen >= 8 && offset == 0:
		w.object(st, pres, objSize)
	case repLen == 0:
		w.object(st, pres, size)
	}
	c.off = dataEnd
	return nil
}

// object counts one media object of stream st at presentation time pres
// (ms, preroll included).
func (w *asfWalk) object(st *asfStream, pres, size int64) {
	t := float64(pres-w.f.preroll) / 1000
	if w.first < 0 || t < w.first {
		w.first = max(t, 0)
	}
	if st.objects == 0 || t < st.first {
		st.first = t
	}
	st.latest = max(st.latest, t)
	st.objects++
	end := t
	switch {
	case st.stream.Type == "audio" && st.avgBytes > 0:
		end += float64(size) / float64(st.avgBytes)
	case st.frame > 0:
		end += st.frame
	case st.objects > 1:
		// No stated frame time (ffmpeg writes no Extended Stream
		// Properties): the mean interval stands in for the last frame's.
		end += (st.latest - st.first) / float64(st.objects-1)
	}
	st.end = max(st.end, end)
	w.m.add(Packet{Time: t, Bytes: size})
}

// bitRate is bytes*8/seconds, held within int64 (a hostile file can state
// a duration of a nanosecond).
func bitRate(bytes, seconds float64) int64 {
	r := bytes * 8 / seconds
	if !(r >= 0) {
		return 0
	}
	return int64(min(r, 1<<62))
}

// sortedMeter feeds a peakMeter packets that arrive nearly in time order
// (in decoding or sending order) in time order: it holds back the packets
// of the last span seconds and releases each once no later arrival can
// precede it.
type sortedMeter struct {
	m    *peakMeter
	span float64
	q    []Packet
}

func (r *sortedMeter) add(p Packet) {
	i := len(r.q)
	for i > 0 && r.q[i-1].Time > p.Time {
		i--
	}
	r.q = append(r.q, Packet{})
	copy(r.q[i+1:], r.q[i:])
	r.q[i] = p
	last := r.q[len(r.q)-1].Time
	n := 0
	for n < len(r.q) && r.q[n].Time < last-r.span {
		r.m.add(r.q[n])
		n++
	}
	r.q = r.q[n:]
}

// flush releases the packets held back.
func (r *sortedMeter) flush() {
	for _, p := range r.q {
		r.m.add(p)
	}
	r.q = r.q[:0]
}
