package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// AVI: RIFF/AVI. The hdrl LIST gives the streams (strh: type, scale, rate,
// length; strf: BITMAPINFOHEADER or WAVEFORMATEX), LIST/INFO the tags. The
// peak comes from the idx1 index (one 16-byte entry per chunk), or, without
// one, from a walk over the movi LIST's chunk headers; the media data is
// never read. OpenDML files (an indx super index, RIFF/AVIX extensions)
// report the headers' duration and a nominal rate.

const (
	aviMaxHdrl  = 1 << 20  // largest hdrl LIST read
	aviIdxPiece = 64 << 10 // idx1 is read in pieces of this size
)

func matchAVI(head []byte, _ string) bool {
	return len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "AVI "
}

// aviStream is one strl of the hdrl LIST.
type aviStream struct {
	kind       string // "vids", "auds", or another fccType
	scale      uint32
	rate       uint32
	length     uint32
	sampleSize uint32
	avgBytes   uint32 // WAVEFORMATEX nAvgBytesPerSec
	stream     Stream
	// Counted while reading the index.
	chunks int64
	bytes  int64
}

// seconds is the media time of n units of scale/rate.
func (a *aviStream) seconds(n float64) float64 {
	if a.rate == 0 || a.scale == 0 {
		return 0
	}
	return n * float64(a.scale) / float64(a.rate)
}

// chunkTime is the start time of the stream's next chunk, of size bytes.
func (a *aviStream) chunkTime() float64 {
	if a.kind == "auds" && a.sampleSize != 0 && a.avgBytes > 0 {
		return float64(a.bytes) / float64(a.avgBytes)
	}
	return a.seconds(float64(a.chunks))
}

func parseAVI(s *source, rep *Report) error {
	var (
		streams         []*aviStream
		hdrl            bool
		moviOff         int64 = -1
		moviSize        int64
		moviTotal       int64 // movi payload of every RIFF (OpenDML)
		idxOff, idxSize int64 = -1, 0
		openDML         bool
		usPerFrame      uint32
		totalFrames     uint32
		info            Tags
	)
	ch := make([]byte, 12)
	for off := int64(12); off+8 <= s.size; {
		if err := s.step(); err != nil {
			return err
		}
		n := min(int64(12), s.size-off)
		if _, err := s.ReadAt(ch[:n], off); err != nil {
			return fmt.Errorf("avi chunk at %d: %w", off, err)
		}
		id := string(ch[:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		body := off + 8
		list := ""
		if n == 12 {
			list = string(ch[8:12])
		}
		switch {
		case id == "LIST" && list == "hdrl" && !hdrl:
			if size < 4 || size > aviMaxHdrl {
				return fmt.Errorf("%w: hdrl LIST of %d bytes", ErrCorrupt, size)
			}
			if body+size > s.size {
				return fmt.Errorf("hdrl LIST of %d bytes: %w", size, io.ErrUnexpectedEOF)
			}
			b := make([]byte, size)
			if _, err := s.ReadAt(b, body); err != nil {
				return fmt.Errorf("hdrl: %w", err)
			}
			var err error
			streams, usPerFrame, totalFrames, openDML, err = aviHeaders(s, b[4:])
			if err != nil {
				return err
			}
			hdrl = true
		case id == "LIST" && list == "INFO":
			if size >= 4 && size <= riffMaxList && body+size <= s.size {
				b := make([]byte, size)
				if _, err := s.ReadAt(b, body); err != nil {
					return fmt.Errorf("INFO: %w", err)
				}
				mergeTags(&info, riffInfo(b[4:]))
			}
		case id == "LIST" && list == "movi":
			size = min(size, s.size-body) // a file cut short holds what it holds
			if moviOff < 0 {
				moviOff, moviSize = body+4, max(size-4, 0)
			}
			moviTotal += max(size-4, 0)
		case id == "idx1" && idxOff < 0:
			size = min(size, s.size-body)
			idxOff, idxSize = body, size
		case id == "RIFF" && list == "AVIX":
			// An OpenDML extension: its movi LIST follows inside.
			openDML = true
			off += 12
			continue
		}
		off = body + size + size&1
	}
	mergeTags(&rep.Tags, info)
	if !hdrl {
		return fmt.Errorf("%w: avi without a hdrl LIST", ErrCorrupt)
	}
	if moviOff < 0 {
		return fmt.Errorf("%w: avi without a movi LIST", ErrCorrupt)
	}
	for _, a := range streams {
		if a.kind == "vids" || a.kind == "auds" {
			rep.Streams = append(rep.Streams, a.stream)
			rep.Duration = max(rep.Duration, a.seconds(float64(a.length)))
		}
	}
	if rep.Duration <= 0 && usPerFrame > 0 {
		rep.Duration = float64(totalFrames) * float64(usPerFrame) / 1e6
	}

	nominal := func() error {
		if rep.Duration <= 0 {
			return fmt.Errorf("%w: avi headers state no duration", ErrCorrupt)
		}
		rep.BitrateAvg = int64(float64(moviTotal) * 8 / rep.Duration)
		rep.BitratePeak = rep.BitrateAvg
		rep.PeakMethod = Nominal
		return nil
	}
	if openDML {
		return nominal()
	}
	var pk []Packet
	var err error
	if idxOff >= 0 && idxSize <= s.budget {
		pk, err = aviIndex(s, streams, idxOff, idxSize)
	} else {
		err = errNoIndex
	}
	if err != nil || len(pk) == 0 {
		if err != nil && !errors.Is(err, ErrBudget) && !errors.Is(err, errNoIndex) {
			return err
		}
		for _, a := range streams {
			a.chunks, a.bytes = 0, 0
		}
		pk, err = aviWalk(s, streams, moviOff, moviSize)
		if errors.Is(err, ErrBudget) {
			return nominal()
		}
		if err != nil {
			return err
		}
	}
	// The duration the chunks cover: a header's length can count frames
	// the muxer never wrote (an AAC encoder's flush).
	var covered float64
	for _, a := range streams {
		if a.kind == "vids" || a.kind == "auds" {
			covered = max(covered, a.chunkTime())
		}
	}
	if covered > 0 {
		rep.Duration = covered
	}
	if rep.Duration <= 0 {
		return fmt.Errorf("%w: avi headers state no duration", ErrCorrupt)
	}
	sortPackets(pk)
	m := newPeakMeter(s.window.Seconds())
	for _, p := range pk {
		m.add(p)
	}
	rep.BitrateAvg = int64(float64(m.total) * 8 / rep.Duration)
	rep.BitratePeak = m.result(rep.Duration)
	rep.PeakMethod = Exact
	return nil
}

var (
	errNoIndex = errors.New("no idx1")
)

// aviHeaders reads the body of the hdrl LIST (after "hdrl").
func aviHeaders(s *source, b []byte) (streams []*aviStream, usPerFrame, totalFrames uint32, openDML bool, err error) {
	err = riffChunks(s, b, func(id string, body []byte) error {
		switch id {
		case "avih":
			if len(body) >= 20 {
				usPerFrame = binary.LittleEndian.Uint32(body[0:])
				totalFrames = binary.LittleEndian.Uint32(body[16:])
			}
		case "LIST":
			if len(body) < 4 || string(body[:4]) != "strl" {
				return nil
			}
			a := &aviStream{}
			streams = append(streams, a)
			return riffChunks(s, body[4:], func(id string, body []byte) error {
				switch id {
				case "strh":
					if len(body) >= 36 {
						a.kind = string(body[:4])
						a.scale = binary.LittleEndian.Uint32(body[20:])
						a.rate = binary.LittleEndian.Uint32(body[24:])
						a.length = binary.LittleEndian.Uint32(body[32:])
					}
					if len(body) >= 48 {
						a.sampleSize = binary.LittleEndian.Uint32(body[44:])
					}
				case "strf":
					aviFormat(a, body)
				case "indx":
					openDML = true
				}
				return nil
			})
		}
		return nil
	})
	return
}

// riffChunks calls f on each chunk in b; a chunk running past b is cut.
func riffChunks(s *source, b []byte, f func(id string, body []byte) error) error {
	for len(b) >= 8 {
		if err := s.step(); err != nil {
			return err
		}
		id := string(b[:4])
		n := int64(binary.LittleEndian.Uint32(b[4:8]))
		b = b[8:]
		n = min(n, int64(len(b)))
		if err := f(id, b[:n]); err != nil {
			return err
		}
		b = b[min(int64(len(b)), n+n&1):]
	}
	return nil
}

// aviFormat reads a strf chunk (the strh must come first, as it does).
func aviFormat(a *aviStream, b []byte) {
	switch a.kind {
	case "vids":
		st := Stream{Type: "video"}
		if a.scale > 0 && a.rate > 0 {
			st.FrameRate = float64(a.rate) / float64(a.scale)
		}
		if len(b) >= 20 {
			st.Width = int(absInt32(int32(binary.LittleEndian.Uint32(b[4:]))))
			st.Height = int(absInt32(int32(binary.LittleEndian.Uint32(b[8:]))))
			st.Codec = aviVideoCodec(string(b[16:20]))
		}
		a.stream = st
	case "auds":
		st := Stream{Type: "audio"}
		if len(b) >= 16 {
			f := wavFormat{
				tag:      binary.LittleEndian.Uint16(b[0:]),
				channels: int(binary.LittleEndian.Uint16(b[2:])),
				rate:     int(binary.LittleEndian.Uint32(b[4:])),
				byteRate: int64(binary.LittleEndian.Uint32(b[8:])),
				align:    int(binary.LittleEndian.Uint16(b[12:])),
				bits:     int(binary.LittleEndian.Uint16(b[14:])),
			}
			if f.tag == 0xfffe && len(b) >= 26 {
				f.tag = binary.LittleEndian.Uint16(b[24:])
			}
			a.avgBytes = uint32(f.byteRate)
			st.SampleRate, st.Channels = f.rate, f.channels
			if f.tag == 0xff {
				st.Codec = "aac"
			} else {
				st.Codec = wavCodec(f)
			}
		}
		a.stream = st
	}
}

func absInt32(v int32) int64 {
	if v < 0 {
		return -int64(v)
	}
	return int64(v)
}

// aviVideoCodec names a BITMAPINFOHEADER compression as ffprobe does.
func aviVideoCodec(fourcc string) string {
	switch strings.ToUpper(fourcc) {
	case "FMP4", "XVID", "DIVX", "DX50", "MP4V":
		return "mpeg4"
	case "H264", "AVC1", "X264":
		return "h264"
	case "MJPG":
		return "mjpeg"
	}
	return strings.ToLower(strings.TrimRight(strings.ToValidUTF8(fourcc, "?"), "\x00 "))
}

// aviChunk counts one movi chunk (by idx1 entry or header) and returns its
// packet; ok is false for chunks of no audio or video stream.
func aviChunk(streams []*aviStream, id []byte, size int64) (Packet, bool) {
	if id[0] < '0' || id[0] > '9' || id[1] < '0' || id[1] > '9' {
		return Packet{}, false
	}
	n := int(id[0]-'0')*10 + int(id[1]-'0')
	if n >= len(streams) {
		return Packet{}, false
	}
	a := streams[n]
	switch {
	case a.kind == "vids" && (id[2] == 'd' && (id[3] == 'c' || id[3] == 'b')):
	case a.kind == "auds" && id[2] == 'w' && id[3] == 'b':
	default:
		return Packet{}, false
	}
	if size == 0 && a.kind == "auds" {
		// An empty audio chunk holds no samples (ffmpeg's demuxer skips
		// it without advancing the time); an empty video chunk is a
		// dropped frame and takes its frame's time.
		return Packet{}, false
	}
	p := Packet{Time: a.chunkTime(), Bytes: size}
	a.chunks++
	a.bytes += size
	return p, true
}

// aviIndex reads the idx1 index at off, of size bytes.
func aviIndex(s *source, streams []*aviStream, off, size int64) ([]Packet, error) {
	var pk []Packet
	buf := make([]byte, min(size-size%16, aviIdxPiece))
	for pos := int64(0); pos+16 <= size; {
		n := min(int64(len(buf)), (size-pos)/16*16)
		if _, err := s.ReadAt(buf[:n], off+pos); err != nil {
			return nil, fmt.Errorf("idx1: %w", err)
		}
		for e := buf[:n]; len(e) >= 16; e = e[16:] {
			if err := s.step(); err != nil {
				return nil, err
			}
			sz := int64(binary.LittleEndian.Uint32(e[12:]))
			if p, ok := aviChunk(streams, e[:4], sz); ok && sz > 0 {
				pk = append(pk, p)
			}
		}
		pos += n
	}
	return pk, nil
}

// aviWalk reads the chunk headers of the movi LIST at off (after "movi").
func aviWalk(s *source, streams []*aviStream, off, size int64) ([]Packet, error) {
	var pk []Packet
	end := off + size
	h := make([]byte, 8) // one buffer: a read escapes it to the heap
	for pos := off; pos+8 <= end; {
		if err := s.step(); err != nil {
			return nil, err
		}
		if _, err := s.ReadAt(h, pos); err != nil {
			return nil, fmt.Errorf("movi chunk at %d: %w", pos, err)
		}
		sz := int64(binary.LittleEndian.Uint32(h[4:]))
		if string(h[:4]) == "LIST" { // a "rec " LIST: its chunks follow
			pos += 12
			continue
		}
		sz = min(sz, end-pos-8)
		if p, ok := aviChunk(streams, h[:4], sz); ok && sz > 0 {
			pk = append(pk, p)
		}
		pos += 8 + sz + sz&1
	}
	return pk, nil
}
