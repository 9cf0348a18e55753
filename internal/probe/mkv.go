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

// Matroska and WebM (RFC 9559, EBML RFC 8794): an EBML header naming the
// DocType, then a Segment holding level-1 elements — SeekHead, Info,
// Tracks, Tags, Attachments, Cues — and the Clusters of blocks. Metadata
// elements are read whole (each under a cap) and parsed in memory; the
// Clusters are walked header by header, block data skipped by offset. The
// peak comes from that walk (exact) when the budget allows, else from the
// Cues (time → cluster position, an index); a live-written file (unknown
// sizes, no Cues, no Duration) gets its duration from its last block.

// EBML and Matroska element IDs, marker bits kept.
const (
	ebmlHeaderID  = 0x1A45DFA3
	ebmlDocType   = 0x4282
	ebmlVoid      = 0xEC
	mkvSegment    = 0x18538067
	mkvSeekHead   = 0x114D9B74
	mkvSeek       = 0x4DBB
	mkvSeekID     = 0x53AB
	mkvSeekPos    = 0x53AC
	mkvInfo       = 0x1549A966
	mkvTimeScale  = 0x2AD7B1
	mkvDuration   = 0x4489
	mkvTitle      = 0x7BA9
	mkvTracks     = 0x1654AE6B
	mkvTrackEntry = 0xAE
	mkvTrackNum   = 0xD7
	mkvTrackType  = 0x83
	mkvCodecID    = 0x86
	mkvDefaultDur = 0x23E383
	mkvVideo      = 0xE0
	mkvPixelW     = 0xB0
	mkvPixelH     = 0xBA
	mkvAudio      = 0xE1
	mkvRate       = 0xB5
	mkvChannels   = 0x9F
	mkvBitDepth   = 0x6264
	mkvTags       = 0x1254C367
	mkvTag        = 0x7373
	mkvTargets    = 0x63C0
	mkvTargetType = 0x68CA
	mkvTagTrack   = 0x63C5
	mkvTagEdition = 0x63C9
	mkvTagChapter = 0x63C4
	mkvTagAttach  = 0x63C6
	mkvSimpleTag  = 0x67C8
	mkvTagName    = 0x45A3
	mkvTagString  = 0x4487
	mkvAttachs    = 0x1941A469
	mkvAttached   = 0x61A7
	mkvFileName   = 0x466E
	mkvFileMIME   = 0x4660
	mkvFileData   = 0x465C
	mkvCues       = 0x1C53BB6B
	mkvCuePoint   = 0xBB
	mkvCueTime    = 0xB3
	mkvCuePos     = 0xB7
	mkvCueCluster = 0xF1
	mkvCluster    = 0x1F43B675
	mkvTimestamp  = 0xE7
	mkvSimpleBlk  = 0xA3
	mkvBlockGroup = 0xA0
	mkvBlock      = 0xA1
	mkvBlockDur   = 0x9B
)

// Caps on what is read into memory.
const (
	mkvMaxHeader = 4 << 10   // the EBML header
	mkvMaxMeta   = 256 << 10 // SeekHead, Info, Tracks, Tags; bigger ones are skipped
	mkvMaxCues   = 1 << 20   // Cues; bigger ones are not used
	mkvMaxSmall  = 4 << 10   // an attachment's name or MIME type
	mkvMaxDepth  = 8         // nesting of SimpleTags
	mkvReorder   = 32        // blocks held back to put B-frames in time order
	mkvMaxTracks = 128       // audio and video tracks reported
)

func matchMatroska(head []byte, ext string) bool {
	return bytes.HasPrefix(head, []byte{0x1A, 0x45, 0xDF, 0xA3})
}

// ebmlHeader decodes an element header at the start of b: the ID (1-4
// bytes, marker kept) and the data size (1-8 bytes; -1 when all its bits
// are ones, "unknown"). n is the header's length.
func ebmlHeader(b []byte) (id uint32, size int64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, io.ErrUnexpectedEOF
	}
	il := 1
	for ; il <= 4 && b[0]&(0x80>>(il-1)) == 0; il++ {
	}
	if il > 4 {
		return 0, 0, 0, fmt.Errorf("%w: ebml: invalid element ID % x", ErrCorrupt, b[0])
	}
	if len(b) < il+1 {
		return 0, 0, 0, io.ErrUnexpectedEOF
	}
	for _, c := range b[:il] {
		id = id<<8 | uint32(c)
	}
	b = b[il:]
	if b[0] == 0 {
		return 0, 0, 0, fmt.Errorf("%w: ebml: invalid size of element %x", ErrCorrupt, id)
	}
	sl := 1
	for ; b[0]&(0x80>>(sl-1)) == 0; sl++ {
	}
	if len(b) < sl {
		return 0, 0, 0, io.ErrUnexpectedEOF
	}
	v := uint64(b[0] & (0xFF >> sl))
	ones := v == uint64(0xFF>>sl)
	for _, c := range b[1:sl] {
		v = v<<8 | uint64(c)
		ones = ones && c == 0xFF
	}
	if ones {
		return id, -1, il + sl, nil
	}
	return id, int64(v), il + sl, nil
}

// ebmlEach calls fn on each child element in the data b of a master
// element. A child of unknown size takes the rest of b.
func ebmlEach(s *source, b []byte, fn func(id uint32, data []byte) error) error {
	for len(b) > 0 {
		if err := s.step(); err != nil {
			return err
		}
		id, size, n, err := ebmlHeader(b)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: ebml: element header past its parent", ErrCorrupt)
		}
		if err != nil {
			return err
		}
		b = b[n:]
		if size < 0 {
			size = int64(len(b))
		}
		if size > int64(len(b)) {
			return fmt.Errorf("%w: ebml: element %x of %d bytes in a parent of %d", ErrCorrupt, id, size, len(b))
		}
		if err := fn(id, b[:size]); err != nil {
			return err
		}
		b = b[size:]
	}
	return nil
}

func ebmlUint(b []byte) (uint64, error) {
	if len(b) > 8 {
		return 0, fmt.Errorf("%w: ebml: unsigned integer of %d bytes", ErrCorrupt, len(b))
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

func ebmlFloat(b []byte) (float64, error) {
	switch len(b) {
	case 0:
		return 0, nil
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case 8:
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	}
	return 0, fmt.Errorf("%w: ebml: float of %d bytes", ErrCorrupt, len(b))
}

// ebmlElem is an element in the file: its header at off, its data from
// data to end. unknown: the size was unknown, end is the parent's.
type ebmlElem struct {
	id             uint32
	off, data, end int64
	unknown        bool
}

// mkvRead fills p from off, a short read being io.ErrUnexpectedEOF.
func mkvRead(s *source, p []byte, off int64) error {
	_, err := s.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("matroska at %d: %w", off, err)
	}
	return nil
}

// mkvElemAt decodes the element header in b (read at off, inside a parent
// ending at parentEnd). An element bigger than its parent is corrupt; one
// running past the end of the file is also io.ErrUnexpectedEOF.
func (m *mkv) elemAt(b []byte, off, parentEnd int64) (ebmlElem, error) {
	id, size, n, err := ebmlHeader(b)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return ebmlElem{}, fmt.Errorf("%w: matroska: element header at %d past its parent: %w", ErrCorrupt, off, err)
	}
	if err != nil {
		return ebmlElem{}, fmt.Errorf("matroska at %d: %w", off, err)
	}
	e := ebmlElem{id: id, off: off, data: off + int64(n), end: parentEnd}
	switch {
	case size < 0:
		e.unknown = true
	case size > parentEnd-e.data:
		if e.data+size > m.s.size || size < 0 {
			return e, fmt.Errorf("%w: matroska: element %x at %d of %d bytes runs past the end of the file: %w",
				ErrCorrupt, id, off, size, io.ErrUnexpectedEOF)
		}
		return e, fmt.Errorf("%w: matroska: element %x at %d of %d bytes is bigger than its parent", ErrCorrupt, id, off, size)
	default:
		e.end = e.data + size
	}
	return e, nil
}

// elem reads the element header at off inside a parent ending at
// parentEnd.
func (m *mkv) elem(off, parentEnd int64) (ebmlElem, error) {
	if err := m.s.step(); err != nil {
		return ebmlElem{}, err
	}
	var b [12]byte
	n := min(int64(len(b)), parentEnd-off)
	if n < 2 {
		return ebmlElem{}, fmt.Errorf("%w: matroska: element header at %d past its parent: %w", ErrCorrupt, off, io.ErrUnexpectedEOF)
	}
	if err := mkvRead(m.s, b[:n], off); err != nil {
		return ebmlElem{}, err
	}
	return m.elemAt(b[:n], off, parentEnd)
}

// load reads the data of e if it is at most limit bytes (nil otherwise).
func (m *mkv) load(e ebmlElem, limit int64) ([]byte, error) {
	if e.unknown {
		return nil, fmt.Errorf("%w: matroska: element %x at %d of unknown size", ErrCorrupt, e.id, e.off)
	}
	if e.end-e.data > limit {
		return nil, nil
	}
	b := make([]byte, e.end-e.data)
	if err := mkvRead(m.s, b, e.data); err != nil {
		return nil, err
	}
	return b, nil
}

// mkvTrack is what the cluster scan keeps of an audio or video track.
type mkvTrack struct {
	last    float64 // time of the last block
	lastDur float64 // the block's duration, or the gap before it
	seen    bool

	lace     []int64 // frame sizes of a laced block held back
	laceTime float64
}

// mkv is the state of one Matroska parse.
type mkv struct {
	s      *source
	rep    *Report
	seg    int64 // Segment data start: SeekHead and Cues positions count from here
	segEnd int64
	scale  float64 // seconds per timestamp tick
	dur    float64 // Info's Duration in seconds; 0: unknown
	live   bool    // the Segment's size is unknown: a file being written

	tracks   map[uint64]*mkvTrack
	done     map[uint32]bool  // level-1 elements parsed
	seek     map[uint32]int64 // level-1 positions from the SeekHead, absolute
	cues     int64            // Cues element position; -1: none known
	clusters int64            // first Cluster; -1: none

	titles     map[int]string   // TITLE by target type value
	artists    map[int][]string // ARTIST by target type value
	infoTitle  string           // Info's Title
	coverFound bool
}

func parseMatroska(s *source, rep *Report) error {
	m := &mkv{s: s, rep: rep, scale: 1e-3, tracks: map[uint64]*mkvTrack{}, done: map[uint32]bool{},
		seek: map[uint32]int64{}, cues: -1, clusters: -1, titles: map[int]string{}, artists: map[int][]string{}}
	h, err := m.elem(0, s.size)
	if err != nil {
		return err
	}
	if h.id != ebmlHeaderID {
		return fmt.Errorf("%w: matroska: no EBML header", ErrCorrupt)
	}
	b, err := m.load(h, mkvMaxHeader)
	if err != nil {
		return err
	}
	err = ebmlEach(s, b, func(id uint32, data []byte) error {
		if id == ebmlDocType && string(data) == "webm" {
			rep.Container = "webm"
		}
		return nil
	})
	if err != nil {
		return err
	}
	off := h.end
	for {
		e, err := m.elem(off, s.size)
		if err != nil {
			return err
		}
		if e.id == mkvSegment {
			m.seg, m.segEnd, m.live = e.data, e.end, e.unknown
			break
		}
		if e.unknown {
			return fmt.Errorf("%w: matroska: element %x of unknown size before the Segment", ErrCorrupt, e.id)
		}
		off = e.end
	}
	if err := m.metadata(); err != nil {
		return err
	}
	if rep.Tags.Title == "" {
		rep.Tags.Title = m.infoTitle
	}
	if len(m.tracks) == 0 {
		return fmt.Errorf("%w: matroska: no audio or video tracks", ErrCorrupt)
	}
	if m.clusters < 0 {
		return fmt.Errorf("%w: matroska: no clusters", ErrCorrupt)
	}
	return m.peak()
}

// metadata walks the level-1 elements up to the first Cluster, then reads
// those the SeekHead places after it.
func (m *mkv) metadata() error {
	for off := m.seg; off < m.segEnd; {
		e, err := m.elem(off, m.segEnd)
		if err != nil {
			return err
		}
		if e.id == mkvCluster {
			m.clusters = e.off
			break
		}
		if e.id == mkvSeekHead && len(m.seek) == 0 {
			if err := m.seekHead(e); err != nil {
				return err
			}
		} else if err := m.level1(e); err != nil {
			return err
		}
		if e.unknown {
			return fmt.Errorf("%w: matroska: element %x of unknown size", ErrCorrupt, e.id)
		}
		off = e.end
	}
	for _, id := range []uint32{mkvInfo, mkvTracks, mkvTags, mkvAttachs, mkvCues} {
		pos, ok := m.seek[id]
		if !ok || m.done[id] || pos >= m.segEnd {
			continue
		}
		e, err := m.elem(pos, m.segEnd)
		if err != nil {
			return err
		}
		if e.id == id { // a stale SeekHead may point elsewhere: ignored
			if err := m.level1(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// level1 parses a level-1 element other than a Cluster (once each).
func (m *mkv) level1(e ebmlElem) error {
	switch e.id {
	case mkvInfo, mkvTracks, mkvTags, mkvAttachs, mkvCues:
	default:
		return nil
	}
	if m.done[e.id] {
		return nil
	}
	m.done[e.id] = true
	switch e.id {
	case mkvAttachs:
		return m.attachments(e)
	case mkvCues:
		m.cues = e.off
		return nil
	}
	b, err := m.load(e, mkvMaxMeta)
	if err != nil || b == nil {
		return err
	}
	switch e.id {
	case mkvInfo:
		return m.info(b)
	case mkvTracks:
		return m.trackList(b)
	default:
		return m.tags(b)
	}
}

func (m *mkv) seekHead(e ebmlElem) error {
	b, err := m.load(e, mkvMaxMeta)
	if err != nil || b == nil {
		return err
	}
	return ebmlEach(m.s, b, func(id uint32, data []byte) error {
		if id != mkvSeek {
			return nil
		}
		var target uint32
		pos := int64(-1)
		err := ebmlEach(m.s, data, func(id uint32, data []byte) error {
			switch id {
			case mkvSeekID:
				v, err := ebmlUint(data)
				target = uint32(v)
				if v > math.MaxUint32 {
					return fmt.Errorf("%w: matroska: SeekID of %d bytes", ErrCorrupt, len(data))
				}
				return err
			case mkvSeekPos:
				v, err := ebmlUint(data)
				if v < uint64(m.segEnd-m.seg) {
					pos = m.seg + int64(v)
				}
				return err
			}
			return nil
		})
		if _, dup := m.seek[target]; err == nil && pos >= 0 && !dup {
			m.seek[target] = pos
		}
		return err
	})
}

func (m *mkv) info(b []byte) error {
	var dur float64
	scale := uint64(1_000_000)
	err := ebmlEach(m.s, b, func(id uint32, data []byte) error {
		var err error
		switch id {
		case mkvTimeScale:
			scale, err = ebmlUint(data)
		case mkvDuration:
			dur, err = ebmlFloat(data)
		case mkvTitle:
			// ffmpeg writes a file's title here, not in Tags.
			m.infoTitle = strings.TrimRight(string(data), "\x00")
		}
		return err
	})
	if err != nil {
		return err
	}
	if scale == 0 {
		return fmt.Errorf("%w: matroska: TimestampScale 0", ErrCorrupt)
	}
	m.scale = float64(scale) / 1e9
	if d := dur * m.scale; d > 0 && !math.IsInf(d, 0) && !math.IsNaN(d) {
		m.dur = d
	}
	return nil
}

// mkvCodecs maps CodecIDs to ffprobe's codec names; A_AAC and A_PCM are
// matched by prefix in mkvCodec.
var mkvCodecs = map[string]string{
	"V_MPEG4/ISO/AVC":  "h264",
	"V_MPEGH/ISO/HEVC": "hevc",
	"V_VP8":            "vp8",
	"V_VP9":            "vp9",
	"V_AV1":            "av1",
	"A_OPUS":           "opus",
	"A_VORBIS":         "vorbis",
	"A_FLAC":           "flac",
	"A_MPEG/L3":        "mp3",
	"A_MPEG/L2":        "mp2",
	"A_AC3":            "ac3",
	"A_EAC3":           "eac3",
	"A_DTS":            "dts",
	"A_ALAC":           "alac",
	"V_MPEG2":          "mpeg2video",
	"V_MPEG4/ISO/ASP":  "mpeg4",
	"V_THEORA":         "theora",
}

func mkvCodec(id string, bits int) string {
	switch {
	case strings.HasPrefix(id, "A_AAC"):
		return "aac"
	case id == "A_PCM/INT/LIT":
		if bits == 0 {
			bits = 16
		}
		if bits == 8 {
			return "pcm_u8"
		}
		return "pcm_s" + strconv.Itoa(bits) + "le"
	case id == "A_PCM/INT/BIG":
		if bits == 0 {
			bits = 16
		}
		return "pcm_s" + strconv.Itoa(bits) + "be"
	case id == "A_PCM/FLOAT/IEEE":
		if bits == 64 {
			return "pcm_f64le"
		}
		return "pcm_f32le"
	}
	if c, ok := mkvCodecs[id]; ok {
		return c
	}
	return strings.ToLower(id)
}

func (m *mkv) trackList(b []byte) error {
	return ebmlEach(m.s, b, func(id uint32, data []byte) error {
		if id != mkvTrackEntry {
			return nil
		}
		var num, typ uint64
		var codec string
		var bits int
		var defDur uint64
		var st Stream
		err := ebmlEach(m.s, data, func(id uint32, data []byte) error {
			var err error
			switch id {
			case mkvTrackNum:
				num, err = ebmlUint(data)
			case mkvTrackType:
				typ, err = ebmlUint(data)
			case mkvCodecID:
				codec = strings.TrimRight(string(data), "\x00")
			case mkvDefaultDur:
				defDur, err = ebmlUint(data)
			case mkvVideo:
				err = ebmlEach(m.s, data, func(id uint32, data []byte) error {
					v, err := ebmlUint(data)
					switch id {
					case mkvPixelW:
						st.Width = int(min(v, math.MaxInt32))
					case mkvPixelH:
						st.Height = int(min(v, math.MaxInt32))
					default:
						return nil
					}
					return err
				})
			case mkvAudio:
				err = ebmlEach(m.s, data, func(id uint32, data []byte) error {
					switch id {
					case mkvRate:
						f, err := ebmlFloat(data)
						if f > 0 && f < 1e7 {
							st.SampleRate = int(f)
						}
						return err
					case mkvChannels, mkvBitDepth:
						v, err := ebmlUint(data)
						if id == mkvChannels {
							st.Channels = int(min(v, 1<<16))
						} else {
							bits = int(min(v, 1<<16))
						}
						return err
					}
					return nil
				})
			}
			return err
		})
		if err != nil {
			return err
		}
		switch typ {
		case 1:
			st.Type = "video"
			st.SampleRate, st.Channels = 0, 0
			if defDur > 0 {
				st.FrameRate = math.Round(1e9/float64(defDur)*1000) / 1000
			}
		case 2:
			st.Type = "audio"
			st.Width, st.Height = 0, 0
		default:
			return nil // subtitles, buttons, metadata: not a stream here
		}
		if len(m.tracks) >= mkvMaxTracks {
			return nil
		}
		if _, dup := m.tracks[num]; num == 0 || dup {
			return fmt.Errorf("%w: matroska: track number %d repeated or 0", ErrCorrupt, num)
		}
		if st.Type == "audio" && st.Channels == 0 {
			st.Channels = 1 // the element's default
		}
		if st.Type == "audio" && st.SampleRate == 0 {
			st.SampleRate = 8000 // the element's default
		}
		st.Codec = mkvCodec(codec, bits)
		if st.Codec == "opus" {
			// Opus decodes at 48 kHz whatever the input rate the muxer
			// wrote (ffprobe, and the Ogg parser, say 48 kHz too).
			st.SampleRate = 48000
		}
		m.tracks[num] = &mkvTrack{}
		m.rep.Streams = append(m.rep.Streams, st)
		return nil
	})
}

// tags reads the global tags (those targeting a track, an edition, a
// chapter or an attachment are left out). A TITLE or ARTIST at album
// level (50, the default) names the album or its artists when a
// track-level (30) one is there too; ffmpeg writes everything at 50.
func (m *mkv) tags(b []byte) error {
	err := ebmlEach(m.s, b, func(id uint32, data []byte) error {
		if id != mkvTag {
			return nil
		}
		level := 50
		global := true
		var simple [][]byte
		err := ebmlEach(m.s, data, func(id uint32, data []byte) error {
			switch id {
			case mkvTargets:
				return ebmlEach(m.s, data, func(id uint32, data []byte) error {
					v, err := ebmlUint(data)
					switch id {
					case mkvTargetType:
						level = int(min(v, 1000))
					case mkvTagTrack, mkvTagEdition, mkvTagChapter, mkvTagAttach:
						global = global && v == 0
					}
					return err
				})
			case mkvSimpleTag:
				simple = append(simple, data)
			}
			return nil
		})
		if err != nil || !global {
			return err
		}
		for _, d := range simple {
			if err := m.simpleTag(d, level, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The lowest level (the track, 30) names the title and artists; when
	// it is below the album's (50), the album's title and artists are
	// the album and album artists.
	t := &m.rep.Tags
	if l, ok := mkvLowest(m.titles); ok {
		t.Title = m.titles[l]
		if l < 50 && t.Album == "" {
			t.Album = m.titles[50]
		}
	}
	if l, ok := mkvLowest(m.artists); ok {
		t.Artists = m.artists[l]
		if l < 50 {
			for _, a := range m.artists[50] {
				if len(t.AlbumArtists) < maxTagValues && !slices.Contains(t.AlbumArtists, a) {
					t.AlbumArtists = append(t.AlbumArtists, a)
				}
			}
		}
	}
	return nil
}

// mkvLowest is the lowest key of levels.
func mkvLowest[V any](levels map[int]V) (int, bool) {
	lowest, ok := 0, false
	for l := range levels {
		if !ok || l < lowest {
			lowest, ok = l, true
		}
	}
	return lowest, ok
}

func (m *mkv) simpleTag(b []byte, level, depth int) error {
	if depth > mkvMaxDepth {
		return fmt.Errorf("%w: matroska: SimpleTags nested too deep", ErrCorrupt)
	}
	var name, value string
	var nested [][]byte
	err := ebmlEach(m.s, b, func(id uint32, data []byte) error {
		switch id {
		case mkvTagName:
			name = strings.ToUpper(string(data))
		case mkvTagString:
			value = strings.TrimRight(string(data), "\x00")
		case mkvSimpleTag:
			nested = append(nested, data)
		}
		return nil
	})
	if err != nil {
		return err
	}
	t := &m.rep.Tags
	add := func(list []string, v string) []string {
		if v == "" || len(list) >= maxTagValues || slices.Contains(list, v) {
			return list
		}
		return append(list, v)
	}
	switch name {
	case "TITLE":
		if _, ok := m.titles[level]; !ok && value != "" {
			m.titles[level] = value
		}
	case "ARTIST":
		m.artists[level] = add(m.artists[level], value)
	case "ALBUM_ARTIST", "ALBUMARTIST":
		t.AlbumArtists = add(t.AlbumArtists, value)
	case "ALBUM":
		if t.Album == "" {
			t.Album = value
		}
	case "GENRE":
		t.Genres = add(t.Genres, value)
	case "DATE_RELEASED", "DATE", "DATE_RECORDED", "YEAR":
		if y := leadingInt(value); t.Year == 0 && y > 0 {
			t.Year = y
		}
	case "PART_NUMBER", "TRACK", "TRACKNUMBER":
		if n := leadingInt(value); t.Track == 0 && n > 0 {
			t.Track = n
		}
	case "DISC", "DISCNUMBER":
		if n := leadingInt(value); t.Disc == 0 && n > 0 {
			t.Disc = n
		}
	}
	for _, d := range nested {
		if err := m.simpleTag(d, level, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// attachments finds the cover: an image attachment named cover.*. File
// data is skipped by offset, never read.
func (m *mkv) attachments(e ebmlElem) error {
	if e.unknown {
		return fmt.Errorf("%w: matroska: Attachments of unknown size", ErrCorrupt)
	}
	for off := e.data; off < e.end; {
		f, err := m.elem(off, e.end)
		if err != nil {
			return err
		}
		off = f.end
		if f.id != mkvAttached || f.unknown {
			continue
		}
		var name, mime string
		var data, size int64 = -1, 0
		for p := f.data; p < f.end; {
			c, err := m.elem(p, f.end)
			if err != nil {
				return err
			}
			p = c.end
			switch c.id {
			case mkvFileName, mkvFileMIME:
				b, err := m.load(c, mkvMaxSmall)
				if err != nil {
					return err
				}
				if c.id == mkvFileName {
					name = string(b)
				} else {
					mime = string(b)
				}
			case mkvFileData:
				data, size = c.data, c.end-c.data
			}
		}
		lower := strings.ToLower(name)
		if !m.coverFound && data >= 0 && strings.HasPrefix(mime, "image/") && strings.HasPrefix(lower, "cover.") {
			m.rep.Cover = &Cover{MIME: mime, Offset: data, Size: size}
			m.coverFound = true
		}
	}
	return nil
}

// peak scans the clusters (exact). When the scan runs over the budget,
// the Cues give an index peak; without Cues (or without a Duration to end
// them), the part scanned gives a lower bound for the peak, and a file
// without a Duration gets its duration from the last cluster, found in the
// file's tail.
func (m *mkv) peak() error {
	rep := m.rep
	window := m.s.window.Seconds()
	if pos, ok := m.seek[mkvCues]; ok && m.cues < 0 {
		m.cues = pos
	}
	// Keep back what reading the Cues or the tail needs, should the scan
	// run out.
	var reserveBytes int64
	var reserveSteps int
	switch {
	case m.cues >= 0 && m.dur > 0:
		reserveBytes = min(m.s.budget/2, mkvMaxCues+64)
		reserveSteps = m.s.steps / 4
	default:
		reserveBytes = m.s.budget / 4
		reserveSteps = m.s.steps / 8
	}
	m.s.budget -= reserveBytes
	m.s.steps -= reserveSteps
	sc, err := m.scan(window)
	m.s.budget += reserveBytes
	m.s.steps += reserveSteps
	if err == nil {
		if m.dur == 0 {
			m.dur = sc.end - max(sc.start, 0)
		}
		if !(m.dur > 0) {
			return fmt.Errorf("%w: matroska: no blocks with a duration", ErrCorrupt)
		}
		rep.Duration = m.dur
		rep.BitrateAvg = int64(float64(sc.payload) * 8 / m.dur)
		rep.BitratePeak = sc.meter.result(m.dur)
		rep.PeakMethod = Exact
		return nil
	}
	if !errors.Is(err, ErrBudget) {
		return err
	}
	// The peak of the part scanned is a lower bound for any estimate.
	var scanned int64
	if sc != nil {
		m.finish(sc)
		scanned = int64(sc.meter.peak)
	}
	// Cluster bytes include headers; the part scanned says how much of
	// them is block data.
	share := 1.0
	if sc != nil && sc.payload > 0 && sc.pos > m.clusters {
		share = min(1, max(0.5, float64(sc.payload)/float64(sc.pos-m.clusters)))
	}
	if m.cues >= 0 && m.dur > 0 {
		points, end, err := m.cuePoints()
		if err != nil {
			return err
		}
		if len(points) > 2 {
			rep.Duration = m.dur
			rep.BitrateAvg = int64(float64(end-m.clusters) * share * 8 / m.dur)
			rep.BitratePeak = max(scanned, xiphSpanPeak(points, window, m.dur, share))
			rep.PeakMethod = Index
			return nil
		}
	}
	if points, end, err := m.clusterPoints(window); err != nil {
		return err
	} else if len(points) > 2 {
		rep.Duration = m.dur
		rep.BitrateAvg = int64(float64(end-m.clusters) * share * 8 / m.dur)
		rep.BitratePeak = max(scanned, xiphSpanPeak(points, window, m.dur, share))
		rep.PeakMethod = Index
		return nil
	}
	if sc == nil || !sc.any {
		return fmt.Errorf("matroska: no blocks within the budget: %w", err)
	}
	if m.dur == 0 {
		end, err := m.tail(window)
		if err != nil {
			return err
		}
		m.dur = end - max(sc.start, 0)
		if !(m.dur > 0) {
			return fmt.Errorf("%w: matroska: the last cluster ends before the first", ErrCorrupt)
		}
	}
	// The peak of the part scanned is a lower bound.
	rep.Duration = m.dur
	rep.BitrateAvg = int64(float64(m.segEnd-m.clusters) * share * 8 / m.dur)
	rep.BitratePeak = scanned
	rep.PeakMethod = Index
	return nil
}

// clusterPoints walks the Clusters by their headers and Timestamps only,
// an index like the Cues: time → position. Without a Duration, the last
// cluster's blocks give the end. It returns no points when a cluster has
// an unknown size (it cannot be stepped over) or the budget runs out.
func (m *mkv) clusterPoints(window float64) ([]xiphPoint, int64, error) {
	points := []xiphPoint{{time: 0, off: 0}}
	var last ebmlElem
	first := 0.0 // the first cluster's time
	var buf [32]byte
	for off := m.clusters; off < m.segEnd; {
		e, err := m.elem(off, m.segEnd)
		if m.live && errors.Is(err, io.ErrUnexpectedEOF) {
			break // a file being written: its last cluster is cut
		}
		if errors.Is(err, ErrBudget) {
			return nil, 0, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if e.unknown {
			return nil, 0, nil
		}
		off = e.end
		if e.id != mkvCluster {
			continue
		}
		n := min(int64(len(buf)), e.end-e.data)
		if err := mkvRead(m.s, buf[:n], e.data); err != nil {
			if errors.Is(err, ErrBudget) {
				return nil, 0, nil
			}
			return nil, 0, err
		}
		// The Timestamp comes first, perhaps after a CRC-32.
		ts := -1.0
		for b := buf[:n]; len(b) > 0 && ts < 0; {
			id, size, hn, err := ebmlHeader(b)
			if err != nil || size < 0 || size > int64(len(b)-hn) {
				break
			}
			if id == mkvTimestamp {
				v, err := ebmlUint(b[hn : hn+int(size)])
				if err != nil {
					return nil, 0, err
				}
				ts = float64(v) * m.scale
			}
			b = b[hn+int(size):]
		}
		if ts < 0 {
			return nil, 0, fmt.Errorf("%w: matroska: cluster at %d without a Timestamp first", ErrCorrupt, e.off)
		}
		if last.id != mkvCluster {
			first = ts
		}
		last = e
		if prev := points[len(points)-1]; ts > prev.time && e.off-m.clusters > prev.off {
			points = append(points, xiphPoint{time: ts, off: e.off - m.clusters})
		}
	}
	if last.id != mkvCluster {
		return nil, 0, nil
	}
	if m.dur == 0 {
		for _, tr := range m.tracks {
			tr.seen, tr.lace = false, nil // the gaps to the part scanned are no frame durations
		}
		sc := &mkvScan{meter: newPeakMeter(window), start: math.Inf(1)}
		if _, err := m.cluster(last, sc); errors.Is(err, ErrBudget) {
			return nil, 0, nil
		} else if err != nil {
			return nil, 0, err
		}
		if !sc.any {
			return nil, 0, nil
		}
		// Without a Duration, media time counts from the first cluster.
		base := max(first, 0)
		m.dur = sc.end - base
		for i := 1; i < len(points); i++ {
			points[i].time -= base
		}
		if !(m.dur > 0) {
			return nil, 0, fmt.Errorf("%w: matroska: the last cluster ends before the first", ErrCorrupt)
		}
	}
	for len(points) > 1 && points[len(points)-1].time >= m.dur {
		points = points[:len(points)-1]
	}
	points = append(points, xiphPoint{time: m.dur, off: last.end - m.clusters})
	return points, last.end, nil
}

// mkvTail is how far from the end the last cluster is looked for.
const mkvTail = 64 << 10

// tail finds the last cluster in the last mkvTail bytes of the Segment
// (by its ID, checked by scanning it) and returns the end of its last
// block.
func (m *mkv) tail(window float64) (float64, error) {
	// Half the budget left, at most: the other half scans the cluster.
	n := min(mkvTail, m.segEnd-m.clusters, m.s.budget/2)
	off := m.segEnd - n
	buf := make([]byte, n)
	if err := mkvRead(m.s, buf, off); err != nil {
		return 0, err
	}
	id := []byte{0x1F, 0x43, 0xB6, 0x75}
	for i := bytes.LastIndex(buf, id); i >= 0; i = bytes.LastIndex(buf[:i], id) {
		e, err := m.elem(off+int64(i), m.segEnd)
		if m.live && errors.Is(err, io.ErrUnexpectedEOF) && e.id == mkvCluster && e.data < m.segEnd {
			e.end, e.unknown, err = m.segEnd, true, nil
		}
		if errors.Is(err, ErrBudget) {
			return 0, err
		}
		if err != nil {
			continue
		}
		for _, tr := range m.tracks {
			tr.seen, tr.lace = false, nil // the gaps to the part scanned are no frame durations
		}
		sc := &mkvScan{meter: newPeakMeter(window), start: math.Inf(1)}
		_, err = m.cluster(e, sc)
		if errors.Is(err, ErrBudget) {
			return 0, err
		}
		if err == nil && sc.any && sc.end > 0 {
			return sc.end, nil
		}
	}
	return 0, fmt.Errorf("%w: matroska: no Duration, and no cluster in the last %d bytes", ErrBudget, n)
}

// mkvScan is what a cluster scan found.
type mkvScan struct {
	meter      *peakMeter
	pending    []Packet // blocks held back to be fed in time order
	payload    int64    // block data bytes of the audio and video tracks
	start, end float64  // media time of the first block and end of the last
	pos        int64    // where the scan got to in the file
	any        bool
}

func (sc *mkvScan) add(p Packet) {
	i, _ := slices.BinarySearchFunc(sc.pending, p.Time, func(q Packet, t float64) int {
		if q.Time <= t {
			return -1
		}
		return 1
	})
	sc.pending = slices.Insert(sc.pending, i, p)
	if len(sc.pending) > mkvReorder {
		sc.meter.add(sc.pending[0])
		sc.pending = slices.Delete(sc.pending, 0, 1)
	}
}

// scan walks the level-1 elements from the first Cluster, reading cluster
// and block headers. Tags, Attachments and Cues met on the way (a file
// without a SeekHead) are read too.
func (m *mkv) scan(window float64) (*mkvScan, error) {
	sc := &mkvScan{meter: newPeakMeter(window), start: math.Inf(1)}
	for off := m.clusters; off < m.segEnd; {
		e, err := m.elem(off, m.segEnd)
		if errors.Is(err, ErrBudget) {
			return sc, err
		}
		if m.live && errors.Is(err, io.ErrUnexpectedEOF) {
			// A live file still being written ends in a cut element: a
			// cut Cluster is scanned up to its last whole block.
			if e.id != mkvCluster || e.data >= m.segEnd {
				break
			}
			e.end, e.unknown, err = m.segEnd, true, nil
		}
		if err != nil {
			return nil, err
		}
		switch {
		case e.id == mkvCluster:
			end, err := m.cluster(e, sc)
			if errors.Is(err, ErrBudget) {
				return sc, err // the part scanned is a lower bound
			}
			if err != nil {
				return nil, err
			}
			off = end
			continue
		case e.unknown:
			return nil, fmt.Errorf("%w: matroska: element %x of unknown size", ErrCorrupt, e.id)
		}
		if err := m.level1(e); err != nil {
			return nil, err
		}
		off = e.end
	}
	m.finish(sc)
	if !sc.any {
		return nil, fmt.Errorf("%w: matroska: no blocks", ErrCorrupt)
	}
	return sc, nil
}

// cluster scans the blocks of the cluster e and returns where it ends (for
// a cluster of unknown size, at the next level-1 element).
func (m *mkv) cluster(e ebmlElem, sc *mkvScan) (int64, error) {
	var base uint64
	var buf [24]byte
	off := e.data
	for off < e.end {
		n := min(int64(len(buf)), e.end-off)
		if n < 2 && m.live && e.unknown {
			return e.end, nil
		}
		if n < 2 {
			return 0, fmt.Errorf("%w: matroska: element header at %d past its cluster", ErrCorrupt, off)
		}
		if err := m.s.step(); err != nil {
			return 0, err
		}
		if err := mkvRead(m.s, buf[:n], off); err != nil {
			return 0, err
		}
		c, err := m.elemAt(buf[:n], off, e.end)
		if err != nil {
			if m.live && e.unknown && errors.Is(err, io.ErrUnexpectedEOF) {
				// A live file still being written ends in a cut block.
				return e.end, nil
			}
			return 0, err
		}
		if e.unknown && c.id > 0xFFFFFF {
			return off, nil // a level-1 element: the cluster ended
		}
		if c.unknown {
			return 0, fmt.Errorf("%w: matroska: cluster child %x of unknown size", ErrCorrupt, c.id)
		}
		switch c.id {
		case mkvTimestamp:
			var err error
			if c.end-c.data <= int64(len(buf))-(c.data-off) {
				base, err = ebmlUint(buf[c.data-off : c.end-off])
			} else {
				err = fmt.Errorf("%w: matroska: cluster Timestamp of %d bytes", ErrCorrupt, c.end-c.data)
			}
			if err != nil {
				return 0, err
			}
		case mkvSimpleBlk:
			if err := m.block(buf[c.data-off:n], c, base, -1, sc); err != nil {
				return 0, err
			}
		case mkvBlockGroup:
			if err := m.blockGroup(c, base, sc); err != nil {
				return 0, err
			}
		}
		off = c.end
		sc.pos = off
	}
	return e.end, nil
}

// blockGroup reads a BlockGroup's Block and BlockDuration.
func (m *mkv) blockGroup(g ebmlElem, base uint64, sc *mkvScan) error {
	var blk ebmlElem
	var head [12]byte
	var hn int64
	dur := int64(-1)
	for off := g.data; off < g.end; {
		c, err := m.elem(off, g.end)
		if err != nil {
			return err
		}
		switch c.id {
		case mkvBlock:
			blk = c
			hn = min(int64(len(head)), c.end-c.data)
			if err := mkvRead(m.s, head[:hn], c.data); err != nil {
				return err
			}
		case mkvBlockDur:
			b, err := m.load(c, 8)
			if err != nil {
				return err
			}
			v, err := ebmlUint(b)
			if err != nil {
				return err
			}
			dur = int64(min(v, math.MaxInt64))
		}
		off = c.end
	}
	if blk.id != mkvBlock {
		return nil
	}
	return m.block(head[:hn], blk, base, dur, sc)
}

// block records the block e, whose data starts with head: track number
// (a size-like vint), a signed 16-bit timestamp relative to the cluster's,
// flags. dur is its BlockDuration in ticks (-1: none).
func (m *mkv) block(head []byte, e ebmlElem, base uint64, dur int64, sc *mkvScan) error {
	if len(head) == 0 || head[0] == 0 {
		return fmt.Errorf("%w: matroska: block at %d", ErrCorrupt, e.off)
	}
	tl := 1
	for ; head[0]&(0x80>>(tl-1)) == 0; tl++ {
	}
	if len(head) < tl+3 || int64(tl+3) > e.end-e.data {
		return fmt.Errorf("%w: matroska: block at %d", ErrCorrupt, e.off)
	}
	num := uint64(head[0] & (0xFF >> tl))
	for _, c := range head[1:tl] {
		num = num<<8 | uint64(c)
	}
	tr, ok := m.tracks[num]
	if !ok {
		return nil // a subtitle or unknown track
	}
	rel := int16(binary.BigEndian.Uint16(head[tl:]))
	t := (float64(base) + float64(rel)) * m.scale
	if math.IsInf(t, 0) || math.IsNaN(t) {
		return fmt.Errorf("%w: matroska: block at %d", ErrCorrupt, e.off)
	}
	size := e.end - e.data - int64(tl+3)
	var frames []int64
	if lacing := head[tl+2] & 0x06; lacing != 0 {
		var err error
		if frames, err = m.laces(e.data+int64(tl+3), size, lacing); err != nil {
			return err
		}
		size = 0
		for _, f := range frames {
			size += f
		}
	}
	// A laced block's frames follow each other up to the track's next
	// block: they are spread over that span when it is known.
	m.flushLace(tr, t, sc)
	sc.any = true
	sc.payload += size
	if len(frames) > 1 {
		tr.lace, tr.laceTime = frames, t
	} else {
		sc.add(Packet{Time: t, Bytes: size})
	}
	sc.start = min(sc.start, t)
	switch {
	case dur >= 0:
		tr.lastDur = float64(dur) * m.scale
	case tr.seen && t > tr.last:
		tr.lastDur = t - tr.last
	}
	if !tr.seen || t >= tr.last {
		tr.last, tr.seen = t, true
	}
	sc.end = max(sc.end, tr.last+tr.lastDur)
	return nil
}

// finish feeds the blocks held back to the meter.
func (m *mkv) finish(sc *mkvScan) {
	for _, tr := range m.tracks {
		m.flushLace(tr, math.NaN(), sc)
	}
	for _, p := range sc.pending {
		sc.meter.add(p)
	}
	sc.pending = nil
}

// flushLace feeds the frames of the track's held laced block, spread
// evenly up to next (the time of the track's next block; the end of the
// scan when next is NaN: spread over the block's own duration).
func (m *mkv) flushLace(tr *mkvTrack, next float64, sc *mkvScan) {
	if len(tr.lace) == 0 {
		return
	}
	span := next - tr.laceTime
	if math.IsNaN(next) || span < 0 {
		span = tr.lastDur
	}
	for i, f := range tr.lace {
		sc.add(Packet{Time: tr.laceTime + span*float64(i)/float64(len(tr.lace)), Bytes: f})
	}
	tr.lace = nil
}

// mkvMaxLace bounds the lace header read: a bigger one (frames of many
// KB in Xiph lacing) counts the block as one frame.
const mkvMaxLace = 4 << 10

// laces reads the lace header at off of a block's payload of size bytes
// and returns the frames' sizes (lace header excluded).
func (m *mkv) laces(off, size int64, lacing byte) ([]int64, error) {
	corrupt := func() error { return fmt.Errorf("%w: matroska: lace header at %d", ErrCorrupt, off) }
	if size < 1 {
		return nil, corrupt()
	}
	var first [1]byte
	if err := mkvRead(m.s, first[:], off); err != nil {
		return nil, err
	}
	n := int(first[0]) + 1
	if lacing == 0x04 { // fixed: equal sizes
		if (size-1)%int64(n) != 0 {
			return nil, corrupt()
		}
		frames := make([]int64, n)
		for i := range frames {
			frames[i] = (size - 1) / int64(n)
		}
		return frames, nil
	}
	want := min(size, int64(1+(n-1)*8))
	for {
		b := make([]byte, want)
		if err := mkvRead(m.s, b, off); err != nil {
			return nil, err
		}
		frames, hdr, short := mkvLaceSizes(b, n, lacing)
		if !short {
			if frames == nil {
				return nil, corrupt()
			}
			var sum int64
			for _, f := range frames[:n-1] {
				sum += f
			}
			last := size - int64(hdr) - sum
			if last < 0 {
				return nil, corrupt()
			}
			frames[n-1] = last
			return frames, nil
		}
		if want >= min(size, mkvMaxLace) {
			return []int64{size}, nil // too big a header to read: one frame
		}
		want = min(size, mkvMaxLace)
	}
}

// mkvLaceSizes decodes the sizes of the first n-1 of n laced frames in
// Xiph (0x02) or EBML (0x06) lacing from the lace header b (count byte
// included) and the header's length. short:
// b ends before the header does; frames nil: the header is invalid.
func mkvLaceSizes(b []byte, n int, lacing byte) (frames []int64, hdr int, short bool) {
	frames = make([]int64, n)
	i := 1
	switch lacing {
	case 0x02: // Xiph: each size as 255s and a last byte below 255
		for k := range n - 1 {
			for {
				if i >= len(b) {
					return nil, 0, true
				}
				frames[k] += int64(b[i])
				i++
				if b[i-1] != 255 {
					break
				}
			}
		}
	case 0x06: // EBML: the first size, then signed differences
		var prev int64
		for k := range n - 1 {
			if i >= len(b) {
				return nil, 0, true
			}
			if b[i] == 0 {
				return nil, 0, false
			}
			l := 1
			for ; b[i]&(0x80>>(l-1)) == 0; l++ {
			}
			if i+l > len(b) {
				return nil, 0, true
			}
			v := int64(b[i] & (0xFF >> l))
			for _, c := range b[i+1 : i+l] {
				v = v<<8 | int64(c)
			}
			i += l
			if k > 0 {
				v = prev + v - (int64(1)<<(7*l-1) - 1)
			}
			if v < 0 {
				return nil, 0, false
			}
			frames[k], prev = v, v
		}
	}
	return frames, i, false
}

// cuePoints reads the Cues into index points (time → offset from the
// first cluster) and returns them with the end of the clusters.
func (m *mkv) cuePoints() ([]xiphPoint, int64, error) {
	e, err := m.elem(m.cues, m.segEnd)
	if err != nil {
		return nil, 0, err
	}
	if e.id != mkvCues {
		return nil, 0, nil
	}
	b, err := m.load(e, mkvMaxCues)
	if err != nil || b == nil {
		return nil, 0, err
	}
	type cue struct {
		time float64
		pos  int64
	}
	var cues []cue
	err = ebmlEach(m.s, b, func(id uint32, data []byte) error {
		if id != mkvCuePoint {
			return nil
		}
		var t uint64
		pos := int64(-1)
		err := ebmlEach(m.s, data, func(id uint32, data []byte) error {
			switch id {
			case mkvCueTime:
				var err error
				t, err = ebmlUint(data)
				return err
			case mkvCuePos:
				return ebmlEach(m.s, data, func(id uint32, data []byte) error {
					if id != mkvCueCluster {
						return nil
					}
					v, err := ebmlUint(data)
					if p := m.seg + int64(min(v, math.MaxInt64/2)); pos < 0 && p >= m.clusters && p < m.segEnd {
						pos = p
					}
					return err
				})
			}
			return nil
		})
		if err == nil && pos >= 0 {
			cues = append(cues, cue{time: float64(t) * m.scale, pos: pos})
		}
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	slices.SortStableFunc(cues, func(a, b cue) int {
		if a.time != b.time {
			if a.time < b.time {
				return -1
			}
			return 1
		}
		return int(min(max(a.pos-b.pos, -1), 1))
	})
	// The clusters end at the first level-1 element known to follow the
	// last of them, else at the end of the Segment.
	end := m.segEnd
	last := m.clusters
	if n := len(cues); n > 0 {
		last = cues[n-1].pos
	}
	for _, p := range m.seek {
		if p > last && p < end {
			end = p
		}
	}
	if m.cues > last && m.cues < end {
		end = m.cues
	}
	points := []xiphPoint{{time: 0, off: 0}}
	for _, c := range cues {
		prev := points[len(points)-1]
		if c.pos-m.clusters <= prev.off || c.time <= prev.time || c.time >= m.dur {
			continue
		}
		points = append(points, xiphPoint{time: c.time, off: c.pos - m.clusters})
	}
	points = append(points, xiphPoint{time: m.dur, off: end - m.clusters})
	return points, end, nil
}
