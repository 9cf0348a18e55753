package probe

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// AIFF and AIFF-C: the COMM chunk gives channels, sample frames, sample
// size, the sample rate (an 80-bit IEEE 754 extended float) and, in
// AIFF-C, the compression type; SSND holds the samples (never read). Tags
// come from an "ID3 " chunk and from NAME/AUTH, the ID3 chunk winning.

func matchAIFF(head []byte, _ string) bool {
	return len(head) >= 12 && string(head[:4]) == "FORM" &&
		(string(head[8:12]) == "AIFF" || string(head[8:12]) == "AIFC")
}

type aiffComm struct {
	channels    int
	frames      int64
	bits        int
	rate        float64
	compression string
}

func parseAIFF(s *source, rep *Report) error {
	var h [12]byte
	if _, err := s.ReadAt(h[:], 0); err != nil {
		return fmt.Errorf("aiff header: %w", err)
	}
	aifc := string(h[8:12]) == "AIFC"
	var (
		comm  *aiffComm
		ssnd  int64 = -1
		plain Tags
	)
	for off := int64(12); off+8 <= s.size; {
		if err := s.step(); err != nil {
			return err
		}
		var ch [8]byte
		if _, err := s.ReadAt(ch[:], off); err != nil {
			return fmt.Errorf("aiff chunk at %d: %w", off, err)
		}
		id := string(ch[:4])
		size := int64(binary.BigEndian.Uint32(ch[4:]))
		body := off + 8
		switch id {
		case "COMM":
			c, err := readAIFFComm(s, body, size, aifc)
			if err != nil {
				return err
			}
			comm = &c
		case "SSND":
			ssnd = max(0, min(size, s.size-body)-8)
		case "NAME", "AUTH":
			if size > 0 && size <= id3MaxText && body+size <= s.size {
				b := make([]byte, size)
				if _, err := s.ReadAt(b, body); err != nil {
					return fmt.Errorf("%s chunk: %w", id, err)
				}
				v := strings.TrimSpace(strings.TrimRight(latin1(b), "\x00"))
				if v != "" && id == "NAME" {
					plain.Title = v
				} else if v != "" {
					plain.Artists = []string{v}
				}
			}
		case "ID3 ", "id3 ":
			if _, err := parseID3v2(s, body, rep); err != nil {
				return fmt.Errorf("id3 chunk: %w", err)
			}
		}
		off = body + size + size&1
	}
	mergeTags(&rep.Tags, plain)
	if comm == nil {
		return fmt.Errorf("%w: aiff without a COMM chunk", ErrCorrupt)
	}
	c := *comm
	rep.Streams = append(rep.Streams, Stream{Type: "audio", Codec: aiffCodec(c), SampleRate: int(math.Round(c.rate)), Channels: c.channels})
	if c.frames == 0 {
		rep.PeakMethod = Unknown
		return nil
	}
	rep.Duration = float64(c.frames) / c.rate
	bytes := ssnd
	if pcm := c.bits > 0 && (c.compression == "NONE" || c.compression == "sowt" || c.compression == "twos"); pcm {
		bytes = c.frames * int64(c.channels) * int64((c.bits+7)/8)
		if ssnd >= 0 {
			bytes = min(bytes, ssnd)
		}
	}
	if bytes < 0 {
		return fmt.Errorf("%w: aiff without a SSND chunk", ErrCorrupt)
	}
	rep.BitrateAvg = int64(float64(bytes) * 8 / rep.Duration)
	rep.BitratePeak = rep.BitrateAvg
	rep.PeakMethod = Exact // PCM: a constant rate
	if c.compression != "NONE" && c.compression != "sowt" && c.compression != "twos" && !strings.HasPrefix(c.compression, "fl") {
		rep.PeakMethod = Nominal
	}
	return nil
}

func readAIFFComm(s *source, off, size int64, aifc bool) (aiffComm, error) {
	var c aiffComm
	if size < 18 {
		return c, fmt.Errorf("%w: COMM chunk of %d bytes", ErrCorrupt, size)
	}
	var b [22]byte
	n := 18
	if aifc && size >= 22 {
		n = 22
	}
	if _, err := s.ReadAt(b[:n], off); err != nil {
		return c, fmt.Errorf("COMM chunk: %w", err)
	}
	c.channels = int(binary.BigEndian.Uint16(b[0:]))
	c.frames = int64(binary.BigEndian.Uint32(b[2:]))
	c.bits = int(binary.BigEndian.Uint16(b[6:]))
	c.rate = extended(b[8:18])
	c.compression = "NONE"
	if n == 22 {
		c.compression = string(b[18:22])
	}
	if !(c.rate >= 1 && c.rate <= 1e7) || c.channels == 0 {
		return c, fmt.Errorf("%w: COMM chunk: %g Hz, %d channels", ErrCorrupt, c.rate, c.channels)
	}
	return c, nil
}

// extended decodes an 80-bit IEEE 754 extended-precision float: sign and
// 15-bit exponent, then a 64-bit mantissa with an explicit integer bit.
func extended(b []byte) float64 {
	exp := int(binary.BigEndian.Uint16(b[0:]) & 0x7fff)
	mant := binary.BigEndian.Uint64(b[2:])
	if exp == 0 && mant == 0 {
		return 0
	}
	v := math.Ldexp(float64(mant), exp-16383-63)
	if b[0]&0x80 != 0 {
		v = -v
	}
	return v
}

// aiffCodec names the codec as ffprobe does.
func aiffCodec(c aiffComm) string {
	switch c.compression {
	case "NONE", "twos":
		switch {
		case c.bits <= 8:
			return "pcm_s8"
		case c.bits <= 16:
			return "pcm_s16be"
		case c.bits <= 24:
			return "pcm_s24be"
		default:
			return "pcm_s32be"
		}
	case "sowt":
		switch {
		case c.bits <= 16:
			return "pcm_s16le"
		case c.bits <= 24:
			return "pcm_s24le"
		default:
			return "pcm_s32le"
		}
	case "fl32", "FL32":
		return "pcm_f32be"
	case "fl64", "FL64":
		return "pcm_f64be"
	case "alaw", "ALAW":
		return "pcm_alaw"
	case "ulaw", "ULAW":
		return "pcm_mulaw"
	case "ima4":
		return "adpcm_ima_qt"
	}
	return strings.ToLower(strings.TrimSpace(c.compression))
}
