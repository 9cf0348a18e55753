package probe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// WAV: RIFF/WAVE, and RF64/BW64 (EBU Tech 3306), whose ds64 chunk carries
// the 64-bit sizes. The fmt chunk gives the codec and the byte rate, the
// data chunk's size the duration; the data itself is never read. Tags come
// from LIST/INFO and from an "id3 " chunk.

const riffMaxList = 64 << 10 // largest LIST chunk read for tags

func matchWAV(head []byte, _ string) bool {
	if len(head) < 12 || string(head[8:12]) != "WAVE" {
		return false
	}
	switch string(head[:4]) {
	case "RIFF", "RF64", "BW64":
		return true
	}
	return false
}

// wavFormat is a fmt chunk.
type wavFormat struct {
	tag      uint16
	channels int
	rate     int
	byteRate int64
	align    int
	bits     int
}

func parseWAV(s *source, rep *Report) error {
	var h [12]byte
	if _, err := s.ReadAt(h[:], 0); err != nil {
		return fmt.Errorf("riff header: %w", err)
	}
	rf64 := string(h[:4]) != "RIFF"
	var (
		fmtc        *wavFormat
		data        int64 = -1
		ds64Data    int64 = -1
		factSamples int64 = -1
		info        Tags
	)
	for off := int64(12); off+8 <= s.size; {
		if err := s.step(); err != nil {
			return err
		}
		var ch [8]byte
		if _, err := s.ReadAt(ch[:], off); err != nil {
			return fmt.Errorf("riff chunk at %d: %w", off, err)
		}
		id := string(ch[:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:]))
		body := off + 8
		switch id {
		case "ds64":
			if !rf64 {
				break
			}
			var b [24]byte
			if _, err := s.ReadAt(b[:], body); err != nil {
				return fmt.Errorf("ds64: %w", err)
			}
			ds64Data = int64(binary.LittleEndian.Uint64(b[8:16]))
		case "fmt ":
			f, err := readWAVFormat(s, body, size)
			if err != nil {
				return err
			}
			fmtc = &f
		case "fact":
			if size >= 4 {
				var b [4]byte
				if _, err := s.ReadAt(b[:], body); err != nil {
					return fmt.Errorf("fact: %w", err)
				}
				factSamples = int64(binary.LittleEndian.Uint32(b[:]))
			}
		case "data":
			if data < 0 {
				data = size
				if rf64 && size == 0xffffffff && ds64Data >= 0 {
					data = ds64Data
				}
				// A file cut short, or written live with a placeholder
				// size, holds what it holds.
				data = min(data, s.size-body)
				size = data
			}
		case "LIST":
			if size >= 4 && size <= riffMaxList && body+size <= s.size {
				b := make([]byte, size)
				if _, err := s.ReadAt(b, body); err != nil {
					return fmt.Errorf("LIST: %w", err)
				}
				if string(b[:4]) == "INFO" {
					mergeTags(&info, riffInfo(b[4:]))
				}
			}
		case "id3 ", "ID3 ":
			if _, err := parseID3v2(s, body, rep); err != nil {
				return fmt.Errorf("id3 chunk: %w", err)
			}
		}
		off = body + size + size&1
	}
	mergeTags(&rep.Tags, info)
	if fmtc == nil {
		return fmt.Errorf("%w: wav without a fmt chunk", ErrCorrupt)
	}
	if data < 0 {
		return fmt.Errorf("%w: wav without a data chunk", ErrCorrupt)
	}
	f := *fmtc
	rep.Streams = append(rep.Streams, Stream{Type: "audio", Codec: wavCodec(f), SampleRate: f.rate, Channels: f.channels})
	pcm := f.tag == 1 || f.tag == 3 || f.tag == 6 || f.tag == 7
	switch {
	case pcm && f.align > 0 && f.rate > 0:
		rep.Duration = float64(data/int64(f.align)) / float64(f.rate)
	case factSamples > 0 && f.rate > 0:
		rep.Duration = float64(factSamples) / float64(f.rate)
	case f.byteRate > 0:
		rep.Duration = float64(data) / float64(f.byteRate)
	default:
		return fmt.Errorf("%w: wav format states no rate", ErrCorrupt)
	}
	if rep.Duration <= 0 {
		rep.PeakMethod = Unknown
		return nil
	}
	rep.BitrateAvg = int64(float64(data) * 8 / rep.Duration)
	rep.BitratePeak = rep.BitrateAvg
	rep.PeakMethod = Exact // a constant rate: every window holds the average
	if !pcm {
		rep.PeakMethod = Nominal
	}
	return nil
}

func readWAVFormat(s *source, off, size int64) (wavFormat, error) {
	var f wavFormat
	if size < 16 {
		return f, fmt.Errorf("%w: fmt chunk of %d bytes", ErrCorrupt, size)
	}
	var b [40]byte
	n := min(size, 40)
	if _, err := s.ReadAt(b[:n], off); err != nil {
		return f, fmt.Errorf("fmt chunk: %w", err)
	}
	f.tag = binary.LittleEndian.Uint16(b[0:])
	f.channels = int(binary.LittleEndian.Uint16(b[2:]))
	f.rate = int(binary.LittleEndian.Uint32(b[4:]))
	f.byteRate = int64(binary.LittleEndian.Uint32(b[8:]))
	f.align = int(binary.LittleEndian.Uint16(b[12:]))
	f.bits = int(binary.LittleEndian.Uint16(b[14:]))
	if f.tag == 0xfffe && n >= 40 { // WAVE_FORMAT_EXTENSIBLE: the subformat GUID starts with the tag
		f.tag = binary.LittleEndian.Uint16(b[24:])
	}
	return f, nil
}

// wavCodec names the codec as ffprobe does.
func wavCodec(f wavFormat) string {
	switch f.tag {
	case 1:
		switch f.bits {
		case 8:
			return "pcm_u8"
		case 16:
			return "pcm_s16le"
		case 24:
			return "pcm_s24le"
		case 32:
			return "pcm_s32le"
		}
	case 3:
		if f.bits == 64 {
			return "pcm_f64le"
		}
		return "pcm_f32le"
	case 6:
		return "pcm_alaw"
	case 7:
		return "pcm_mulaw"
	case 2:
		return "adpcm_ms"
	case 0x11:
		return "adpcm_ima_wav"
	case 0x50:
		return "mp2"
	case 0x55:
		return "mp3"
	case 0x2000:
		return "ac3"
	}
	return fmt.Sprintf("0x%04x", f.tag)
}

// riffInfo reads the subchunks of a LIST/INFO chunk.
func riffInfo(b []byte) Tags {
	var t Tags
	for len(b) >= 8 {
		id := string(b[:4])
		n := int(binary.LittleEndian.Uint32(b[4:8]))
		b = b[8:]
		if n > len(b) {
			break
		}
		v := b[:n]
		if i := bytes.IndexByte(v, 0); i >= 0 {
			v = v[:i]
		}
		val := strings.TrimSpace(strings.ToValidUTF8(string(v), "\uFFFD"))
		b = b[min(len(b), n+n&1):]
		if val == "" {
			continue
		}
		switch id {
		case "INAM":
			t.Title = val
		case "IART":
			t.Artists = []string{val}
		case "IPRD":
			t.Album = val
		case "ICRD":
			t.Year = leadingInt(val)
		case "IGNR":
			t.Genres = []string{val}
		case "ITRK", "IPRT":
			t.Track = leadingInt(val)
		}
	}
	return t
}
