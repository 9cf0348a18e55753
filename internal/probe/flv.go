package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// FLV: a 9-byte header, then tags (type, data size, timestamp) each
// followed by the previous tag's size. The onMetaData script tag (AMF0)
// states the duration, data rates, frame size and tags; the first audio
// and video tags name the codecs. A walk over the tag headers (16 bytes
// a tag: the header and the first bytes of the data; a file the budget
// covers is read in large pieces) gives every packet's size and time, so
// the peak is exact; a walk the budget cannot finish falls back to
// onMetaData's duration and a nominal rate.

const (
	flvMaxScript = 256 << 10 // bytes of a script tag read
	flvMaxDepth  = 16        // AMF0 nesting followed
	flvTagPeek   = 16        // tag header (11) and the first data bytes
)

func matchFLV(head []byte, _ string) bool {
	return len(head) >= 9 && string(head[:3]) == "FLV" && head[3] == 1
}

// flvStream is the audio or the video of an FLV file.
type flvStream struct {
	index   int // in rep.Streams; -1 before its first tag
	packets int64
	first   float64
	latest  float64
}

// flvMeta is what onMetaData says.
type flvMeta struct {
	duration      float64
	audioKbps     float64
	videoKbps     float64
	width, height int
	frameRate     float64
	tags          map[string][]string
}

func parseFLV(s *source, rep *Report) error {
	var h [9]byte
	if _, err := s.ReadAt(h[:], 0); err != nil {
		return fmt.Errorf("flv header: %w", err)
	}
	off := int64(binary.BigEndian.Uint32(h[5:])) + 4 // after PreviousTagSize0
	if off < 13 {
		return fmt.Errorf("%w: flv header of %d bytes", ErrCorrupt, off-4)
	}
	var (
		meta          flvMeta
		haveMeta      bool
		audio         = flvStream{index: -1}
		video         = flvStream{index: -1}
		walked, media int64 // bytes of tags walked, and of their media data
		start         = math.Inf(1)
		end           float64
		walkErr       error
	)
	m := newPeakMeter(s.window.Seconds())
	// Composition offsets put a packet's time up to a few frames before
	// or after its neighbours'.
	sm := &sortedMeter{m: m, span: 2}
	c := &asfCursor{s: s, limit: s.size, ahead: flvTagPeek}
	if s.size <= s.budget/2 {
		c.ahead = asfWhole // large reads: few calls
	}
	for off+11 <= s.size {
		if walkErr = s.step(); walkErr != nil {
			break
		}
		n := min(int64(flvTagPeek), s.size-off)
		c.seek(off, s.size)
		var b []byte
		if b, walkErr = c.bytes(n); walkErr != nil {
			break
		}
		typ := b[0] & 0x1f
		size := int64(b[1])<<16 | int64(b[2])<<8 | int64(b[3])
		ms := int64(b[4])<<16 | int64(b[5])<<8 | int64(b[6]) | int64(b[7])<<24
		data := b[11:n]
		avail := min(size, s.size-off-11)
		next := off + 11 + size + 4
		switch {
		case typ == 18 && !haveMeta && size > 0:
			haveMeta = true
			sc := make([]byte, min(avail, flvMaxScript))
			if _, walkErr = s.ReadAt(sc, off+11); walkErr != nil {
				break
			}
			meta = flvScript(s, sc)
		case typ == 8 && len(data) >= 1:
			if audio.index < 0 {
				audio.index = len(rep.Streams)
				rep.Streams = append(rep.Streams, flvAudio(data))
			}
			bytes := avail - 1
			if data[0]>>4 == 10 { // AAC: a packet type byte; 0 is the config
				if len(data) < 2 || data[1] == 0 {
					if len(data) >= 4 {
						flvAAC(&rep.Streams[audio.index], data[2:4])
					}
					break
				}
				bytes--
			}
			flvPacket(sm, &audio, float64(ms)/1000, max(bytes, 0), &start, &end)
			media += max(bytes, 0)
		case typ == 9 && len(data) >= 1 && data[0]>>4 != 5: // 5: an info or command frame
			codec := data[0] & 0x0f
			if video.index < 0 {
				video.index = len(rep.Streams)
				rep.Streams = append(rep.Streams, Stream{Type: "video", Codec: flvVideoCodec(codec)})
			}
			bytes, t := avail-1, float64(ms)/1000
			switch codec {
			case 7, 12: // AVC, HEVC: packet type, composition time
				if len(data) < 5 || data[1] != 1 {
					bytes = -1 // a sequence header or end of sequence
					break
				}
				cts := int64(int32(uint32(data[2])<<24|uint32(data[3])<<16|uint32(data[4])<<8) >> 8)
				bytes, t = avail-5, float64(ms+cts)/1000
			case 4, 5: // VP6: an adjustment byte
				bytes--
			}
			if bytes >= 0 {
				flvPacket(sm, &video, t, bytes, &start, &end)
				media += bytes
			}
		}
		if walkErr != nil {
			break
		}
		walked += min(11+size+4, s.size-off)
		off = next
	}
	sm.flush()
	for _, st := range []*flvStream{&audio, &video} {
		if st.index < 0 {
			continue
		}
		if st.packets > 1 {
			// The last packet lasts as long as the mean.
			end = max(end, st.latest+(st.latest-st.first)/float64(st.packets-1))
		}
	}
	// Fill what the tags leave out from onMetaData.
	for i := range rep.Streams {
		st := &rep.Streams[i]
		if st.Type == "video" {
			st.Width, st.Height, st.FrameRate = meta.width, meta.height, meta.frameRate
		}
	}
	for _, field := range []string{"title", "artist", "album", "album_artist", "track", "disc", "year", "genre"} {
		rep.Tags.set(field, meta.tags[field])
	}

	if walkErr != nil && !errors.Is(walkErr, ErrBudget) && !errors.Is(walkErr, io.ErrUnexpectedEOF) && !errors.Is(walkErr, io.EOF) {
		return walkErr // the context ended
	}
	if walkErr == nil && m.n > 0 {
		// Tag times count ms; the mean interval adds float noise.
		rep.Duration = math.Round((end-max(start, 0))*1e6) / 1e6
		if rep.Duration < 0.001 { // less than a ms is no duration
			rep.Duration = meta.duration
		}
		if rep.Duration < 0.001 {
			return fmt.Errorf("%w: flv media of no duration", ErrCorrupt)
		}
		rep.BitrateAvg = bitRate(float64(m.total), rep.Duration)
		rep.BitratePeak = m.result(rep.Duration)
		rep.PeakMethod = Exact
		return nil
	}
	// The walk stopped early: onMetaData's duration, and the media bytes
	// estimated from the share of media data in the tags walked (or
	// onMetaData's data rates).
	if !(meta.duration > 0) {
		if 2*media > walked && errors.Is(walkErr, ErrBudget) {
			// Tags that are mostly media data (not a run of empty or
			// unknown tags), no onMetaData duration, and more tags
			// than the limits allow: size-only (see Probe).
			return fmt.Errorf("flv without a stated duration: %w", errSizeOnly)
		}
		if walkErr != nil {
			return fmt.Errorf("flv tags: %w", walkErr)
		}
		return fmt.Errorf("%w: flv without media tags or a stated duration", ErrCorrupt)
	}
	rep.Duration = meta.duration
	switch {
	case walked > 0 && media > 0:
		rep.BitrateAvg = bitRate(float64(media)/float64(walked)*float64(s.size), rep.Duration)
	case meta.audioKbps+meta.videoKbps > 0:
		rep.BitrateAvg = bitRate((meta.audioKbps+meta.videoKbps)*1000/8, 1)
	default:
		rep.BitrateAvg = bitRate(float64(s.size), rep.Duration)
	}
	rep.BitratePeak = max(rep.BitrateAvg, m.result(rep.Duration))
	rep.PeakMethod = Nominal
	return nil
}

// flvPacket counts one packet of st at t seconds.
func flvPacket(sm *sortedMeter, st *flvStream, t float64, bytes int64, start, end *float64) {
	if st.packets == 0 || t < st.first {
		st.first = t
	}
	st.latest = max(st.latest, t)
	st.packets++
	*start = min(*start, t)
	*end = max(*end, t)
	sm.add(Packet{Time: t, Bytes: bytes})
}

// flvAudio reads an audio tag's first byte: format, rate, size, channels;
// an MP3 frame header after it says more.
func flvAudio(data []byte) Stream {
	st := Stream{Type: "audio"}
	format, rate, bits16, stereo := data[0]>>4, data[0]>>2&3, data[0]>>1&1 == 1, data[0]&1 == 1
	st.SampleRate = [4]int{5512, 11025, 22050, 44100}[rate]
	st.Channels = 1
	if stereo {
		st.Channels = 2
	}
	switch format {
	case 0, 3:
		st.Codec = "pcm_u8"
		if bits16 {
			st.Codec = "pcm_s16le"
		}
	case 1:
		st.Codec = "adpcm_swf"
	case 2, 14:
		st.Codec = "mp3"
		if f, ok := mpegHeader(data[1:]); ok {
			st.SampleRate, st.Channels = f.rate, f.channels
		}
		if format == 14 {
			st.SampleRate = 8000
		}
	case 4, 5, 6:
		st.Codec = "nellymoser"
		st.SampleRate = [7]int{4: 16000, 5: 8000, 6: st.SampleRate}[format]
	case 7:
		st.Codec = "pcm_alaw"
	case 8:
		st.Codec = "pcm_mulaw"
	case 10:
		st.Codec = "aac"
	case 11:
		st.Codec, st.SampleRate = "speex", 16000
	default:
		st.Codec = "0x" + strconv.FormatUint(uint64(format), 16)
	}
	return st
}

// flvAAC reads the start of an AudioSpecificConfig: object type (5 bits),
// sampling frequency index (4), channel configuration (4).
func flvAAC(st *Stream, asc []byte) {
	idx := (asc[0]&7)<<1 | asc[1]>>7
	rates := [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
	if int(idx) < len(rates) {
		st.SampleRate = rates[idx]
	}
	if ch := int(asc[1] >> 3 & 0x0f); ch > 0 && ch < 7 {
		st.Channels = ch
	} else if ch == 7 {
		st.Channels = 8
	}
}

// flvVideoCodec names a video tag's codec ID as ffprobe does.
func flvVideoCodec(id byte) string {
	switch id {
	case 2:
		return "flv1"
	case 3:
		return "flashsv"
	case 4:
		return "vp6f"
	case 5:
		return "vp6a"
	case 6:
		return "flashsv2"
	case 7:
		return "h264"
	case 12:
		return "hevc"
	}
	return "0x" + strconv.FormatUint(uint64(id), 16)
}

// flvScript reads a script tag: the AMF0 string "onMetaData" and an ECMA
// array or object of properties.
func flvScript(s *source, b []byte) flvMeta {
	meta := flvMeta{tags: map[string][]string{}}
	a := &amf{s: s, b: b}
	name, ok := a.value(0)
	if !ok || name.str != "onMetaData" || len(a.b) < 1 {
		return meta
	}
	switch a.b[0] {
	case 0x08: // ECMA array: a count (a hint), then properties
		if len(a.b) < 5 {
			return meta
		}
		a.b = a.b[5:]
	case 0x03:
		a.b = a.b[1:]
	default:
		return meta
	}
	a.props(1, func(key string, v amfValue) {
		switch k := strings.ToLower(key); k {
		case "duration":
			if d := v.positive(); d >= 0.001 { // less than a ms is no duration
				meta.duration = d
			}
		case "audiodatarate":
			meta.audioKbps = v.positive()
		case "videodatarate":
			meta.videoKbps = v.positive()
		case "width":
			meta.width = int(min(v.positive(), 1<<16))
		case "height":
			meta.height = int(min(v.positive(), 1<<16))
		case "framerate":
			meta.frameRate = v.positive()
		default:
			field := map[string]string{
				"title": "title", "artist": "artist", "author": "artist", "album": "album",
				"album_artist": "album_artist", "track": "track", "tracknumber": "track",
				"disc": "disc", "year": "year", "date": "year", "genre": "genre",
			}[k]
			if field != "" && v.isStr && strings.TrimSpace(v.str) != "" {
				meta.tags[field] = []string{strings.TrimSpace(v.str)}
			}
		}
	})
	return meta
}

// amf reads AMF0 values from b.
type amf struct {
	s *source
	b []byte
}

type amfValue struct {
	num   float64
	isNum bool
	str   string
	isStr bool
}

func (v amfValue) positive() float64 {
	if v.isNum && v.num > 0 && !math.IsInf(v.num, 0) {
		return v.num
	}
	return 0
}

// value reads one value; ok is false when b ends inside it or nesting
// runs too deep.
func (a *amf) value(depth int) (amfValue, bool) {
	var v amfValue
	if len(a.b) < 1 || depth > flvMaxDepth || a.s.step() != nil {
		return v, false
	}
	t := a.b[0]
	a.b = a.b[1:]
	switch t {
	case 0x00: // number
		if len(a.b) < 8 {
			return v, false
		}
		v.num, v.isNum = math.Float64frombits(binary.BigEndian.Uint64(a.b)), true
		a.b = a.b[8:]
	case 0x01: // boolean
		return v, a.skip(1)
	case 0x02, 0x0c: // string, long string
		n := 2
		if t == 0x0c {
			n = 4
		}
		if len(a.b) < n {
			return v, false
		}
		size := uint64(binary.BigEndian.Uint16(a.b))
		if n == 4 {
			size = uint64(binary.BigEndian.Uint32(a.b))
		}
		a.b = a.b[n:]
		if uint64(len(a.b)) < size {
			return v, false
		}
		v.str, v.isStr = strings.ToValidUTF8(string(a.b[:size]), "\uFFFD"), true
		a.b = a.b[size:]
	case 0x03: // object
		return v, a.props(depth+1, nil)
	case 0x05, 0x06, 0x0d: // null, undefined, unsupported
	case 0x07: // reference
		return v, a.skip(2)
	case 0x08: // ECMA array
		return v, a.skip(4) && a.props(depth+1, nil)
	case 0x0a: // strict array
		if len(a.b) < 4 {
			return v, false
		}
		n := binary.BigEndian.Uint32(a.b)
		a.b = a.b[4:]
		for range n {
			if _, ok := a.value(depth + 1); !ok {
				return v, false
			}
		}
	case 0x0b: // date: ms and a time zone
		return v, a.skip(10)
	default:
		return v, false
	}
	return v, true
}

func (a *amf) skip(n int) bool {
	if len(a.b) < n {
		return false
	}
	a.b = a.b[n:]
	return true
}

// props reads name/value pairs up to the end marker (an empty name and
// 0x09), calling f on each when f is set.
func (a *amf) props(depth int, f func(string, amfValue)) bool {
	for {
		if len(a.b) < 3 || a.s.step() != nil {
			return false
		}
		n := int(binary.BigEndian.Uint16(a.b))
		if n == 0 && a.b[2] == 0x09 {
			a.b = a.b[3:]
			return true
		}
		if len(a.b) < 2+n {
			return false
		}
		key := string(a.b[2 : 2+n])
		a.b = a.b[2+n:]
		v, ok := a.value(depth)
		if !ok {
			return false
		}
		if f != nil {
			f(key, v)
		}
	}
}
