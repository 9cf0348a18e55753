package probe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
)

// ID3v2 (https://id3.org/id3v2.4.0-structure, id3v2.3.0, id3v2-00 for 2.2)
// and ID3v1 tags, shared by MP3, WAV ("id3 " chunk) and AIFF ("ID3 "
// chunk).
//
// Frames are read one at a time through the source, so a tag holding a
// 10 MB cover costs a few kilobytes of reads: the picture's place is
// reported, its bytes are never read. Only a v2.2/v2.3 tag with
// tag-wide unsynchronisation must be read whole (its frame headers are
// unsynchronised too); such a tag is read only up to id3MaxUnsync and its
// cover, whose file bytes are not the picture's bytes, is not reported.

const (
	id3HeaderLen   = 10
	id3MaxText     = 64 << 10  // longest text frame read; longer ones are skipped
	id3MaxUnsync   = 256 << 10 // largest tag-wide unsynchronised tag parsed
	id3PictureHead = 4 << 10   // bytes read of an APIC to find where its data starts
)

// id3Size returns the size of the ID3v2 tag whose 10-byte header is h
// (header, body and footer), or 0 if h is not an ID3v2 header.
func id3Size(h []byte) int64 {
	if len(h) < id3HeaderLen || string(h[:3]) != "ID3" || h[3] < 2 || h[3] > 4 || h[4] == 0xff {
		return 0
	}
	if h[6]|h[7]|h[8]|h[9] >= 0x80 {
		return 0
	}
	n := int64(syncsafe(h[6:10])) + id3HeaderLen
	if h[3] == 4 && h[5]&0x10 != 0 {
		n += id3HeaderLen // footer
	}
	return n
}

func syncsafe(b []byte) uint32 {
	return uint32(b[0]&0x7f)<<21 | uint32(b[1]&0x7f)<<14 | uint32(b[2]&0x7f)<<7 | uint32(b[3]&0x7f)
}

// id3Body reads a tag's body: from the source, or from memory once a
// tag-wide unsynchronisation was undone.
type id3Body struct {
	s    *source
	base int64  // file offset of the body
	mem  []byte // the de-unsynchronised body, or nil
	n    int64
}

func (b *id3Body) read(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > b.n {
		return fmt.Errorf("%w: id3 frame past the end of its tag", ErrCorrupt)
	}
	if b.mem != nil {
		copy(p, b.mem[off:])
		return nil
	}
	_, err := b.s.ReadAt(p, b.base+off)
	return err
}

// parseID3v2 reads the ID3v2 tag at off into rep's tags and cover and
// returns its total size. Values already set in rep are kept.
func parseID3v2(s *source, off int64, rep *Report) (int64, error) {
	var h [id3HeaderLen]byte
	if _, err := s.ReadAt(h[:], off); err != nil {
		return 0, fmt.Errorf("id3v2 header: %w", err)
	}
	size := id3Size(h[:])
	if size == 0 {
		return 0, fmt.Errorf("%w: bad id3v2 header", ErrCorrupt)
	}
	if off+size > s.size {
		return 0, fmt.Errorf("id3v2 tag of %d bytes at %d: %w", size, off, io.ErrUnexpectedEOF)
	}
	ver, flags := h[3], h[5]
	b := &id3Body{s: s, base: off + id3HeaderLen, n: int64(syncsafe(h[6:10]))}
	if flags&0x80 != 0 && ver < 4 {
		if b.n > id3MaxUnsync {
			return size, nil // too big to undo: skip the tag, keep the audio
		}
		raw := make([]byte, b.n)
		if _, err := s.ReadAt(raw, b.base); err != nil {
			return 0, fmt.Errorf("id3v2 tag: %w", err)
		}
		b.mem = unsync(raw)
		b.n = int64(len(b.mem))
	}
	t := id3Tags{}
	if err := t.frames(b, ver, flags); err != nil {
		return 0, err
	}
	t.merge(rep)
	return size, nil
}

// unsync undoes unsynchronisation: every 0xFF 0x00 becomes 0xFF.
func unsync(b []byte) []byte {
	out := b[:0]
	for i := 0; i < len(b); i++ {
		out = append(out, b[i])
		if b[i] == 0xff && i+1 < len(b) && b[i+1] == 0 {
			i++
		}
	}
	return out
}

// id3Tags collects the frames of one tag.
type id3Tags struct {
	Tags
	cover     *Cover
	coverType byte
}

func (t *id3Tags) frames(b *id3Body, ver, flags byte) error {
	pos := int64(0)
	if flags&0x40 != 0 && ver >= 3 { // extended header
		var e [4]byte
		if err := b.read(e[:], 0); err != nil {
			return err
		}
		if ver == 4 {
			pos = int64(syncsafe(e[:])) // includes its own size field
		} else {
			pos = int64(binary.BigEndian.Uint32(e[:])) + 4
		}
		if pos < 4 || pos > b.n {
			return fmt.Errorf("%w: id3v2 extended header of %d bytes", ErrCorrupt, pos)
		}
	}
	hlen := int64(10)
	if ver == 2 {
		hlen = 6
	}
	for pos+hlen <= b.n {
		if err := b.s.step(); err != nil {
			return err
		}
		var fh [10]byte
		if err := b.read(fh[:hlen], pos); err != nil {
			return err
		}
		if fh[0] == 0 {
			break // padding
		}
		var id string
		var n int64
		var fflags uint16
		switch ver {
		case 2:
			id = string(fh[:3])
			n = int64(fh[3])<<16 | int64(fh[4])<<8 | int64(fh[5])
		case 3:
			id = string(fh[:4])
			n = int64(binary.BigEndian.Uint32(fh[4:8]))
			fflags = binary.BigEndian.Uint16(fh[8:10])
		default:
			id = string(fh[:4])
			n = int64(syncsafe(fh[4:8]))
			fflags = binary.BigEndian.Uint16(fh[8:10])
		}
		if !validFrameID(id) {
			break // garbage after the frames: treat as padding, as players do
		}
		data := pos + hlen
		if n > b.n-data {
			return fmt.Errorf("%w: id3v2 frame %q of %d bytes overruns its tag", ErrCorrupt, id, n)
		}
		pos = data + n
		// Frame flags that change the data: compression and encryption
		// make it unreadable here; grouping and a data length indicator
		// prefix it; unsynchronisation (v2.4) alters it.
		skipHead, unsynced, opaque := int64(0), false, false
		switch ver {
		case 3:
			opaque = fflags&0x00c0 != 0
			if fflags&0x0020 != 0 {
				skipHead++
			}
		case 4:
			opaque = fflags&0x000c != 0
			if fflags&0x0040 != 0 {
				skipHead++
			}
			if fflags&0x0001 != 0 {
				skipHead += 4
			}
			unsynced = fflags&0x0002 != 0
		}
		if opaque || skipHead > n {
			continue
		}
		data += skipHead
		n -= skipHead
		switch id {
		case "APIC", "PIC":
			if unsynced || b.mem != nil {
				continue // the file bytes are not the picture's bytes
			}
			if err := t.picture(b, id, data, n); err != nil {
				return err
			}
			continue
		}
		key := frameKey(id)
		if key == "" || n > id3MaxText || n == 0 {
			continue
		}
		raw := make([]byte, n)
		if err := b.read(raw, data); err != nil {
			return err
		}
		if unsynced {
			raw = unsync(raw)
		}
		t.set(key, textValues(raw))
	}
	return nil
}

func validFrameID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func frameKey(id string) string {
	switch id {
	case "TIT2", "TT2":
		return "title"
	case "TPE1", "TP1":
		return "artist"
	case "TALB", "TAL":
		return "album"
	case "TPE2", "TP2":
		return "album_artist"
	case "TRCK", "TRK":
		return "track"
	case "TPOS", "TPA":
		return "disc"
	case "TDRC", "TYER", "TYE":
		return "year"
	case "TCON", "TCO":
		return "genre"
	}
	return ""
}

func (t *id3Tags) set(key string, vals []string) {
	if key == "genre" {
		var gs []string
		for _, v := range vals {
			gs = append(gs, genres(v)...) // "(13)" references
		}
		vals = gs
	}
	t.Tags.set(key, vals)
}

// leadingInt parses the number at the start of s ("3/12" → 3,
// "2019-04-01" → 2019); 0 if there is none.
func leadingInt(s string) int {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && i < 9 && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, _ := strconv.Atoi(s[:i])
	return n
}

// genres resolves a TCON value: "(13)" and "13" refer to the ID3v1 genre
// list, "(13)Pop" is a reference refined by text (the text wins), and
// "(RX)"/"(CR)" mean Remix and Cover.
func genres(v string) []string {
	var out []string
	for strings.HasPrefix(v, "(") {
		end := strings.IndexByte(v, ')')
		if end < 0 {
			break
		}
		ref := v[1:end]
		v = v[end+1:]
		switch ref {
		case "RX":
			out = append(out, "Remix")
		case "CR":
			out = append(out, "Cover")
		default:
			if g := genreName(ref); g != "" {
				out = append(out, g)
			}
		}
	}
	if v != "" {
		if g := genreName(v); g != "" {
			v = g
		}
		out = []string{v}
	}
	return out
}

func genreName(ref string) string {
	n, err := strconv.Atoi(ref)
	if err != nil || n < 0 || n >= len(id3v1Genres) {
		return ""
	}
	return id3v1Genres[n]
}

// textValues decodes a text frame: an encoding byte, then one or more
// strings separated by NUL (v2.4 multi-values; earlier versions carry one
// string, and a trailing NUL is only a terminator).
func textValues(raw []byte) []string {
	if len(raw) < 1 {
		return nil
	}
	var vals []string
	for _, v := range strings.Split(decodeText(raw[0], raw[1:]), "\x00") {
		if v = strings.TrimSpace(v); v != "" {
			vals = append(vals, v)
		}
	}
	return vals
}

// decodeText decodes ID3 text in one of its four encodings into UTF-8,
// keeping NULs as separators.
func decodeText(enc byte, b []byte) string {
	switch enc {
	case 1, 2: // UTF-16 with BOM, UTF-16BE
		big := enc == 2
		u := make([]uint16, 0, len(b)/2)
		for i := 0; i+1 < len(b); i += 2 {
			c := uint16(b[i])<<8 | uint16(b[i+1])
			if !big {
				c = uint16(b[i+1])<<8 | uint16(b[i])
			}
			switch c {
			case 0xfeff: // BOM in the current order
				continue
			case 0xfffe: // BOM in the other order
				big = !big
				continue
			}
			u = append(u, c)
		}
		return string(utf16.Decode(u))
	case 3:
		return strings.ToValidUTF8(string(b), "\uFFFD")
	default:
		return latin1(b)
	}
}

func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// picture records an APIC (v2.3/2.4) or PIC (v2.2) frame's data place:
// the front cover if there is one, else the first picture.
func (t *id3Tags) picture(b *id3Body, id string, data, n int64) error {
	if t.cover != nil && t.coverType == 3 {
		return nil
	}
	head := make([]byte, min(n, id3PictureHead))
	if err := b.read(head, data); err != nil {
		return err
	}
	if len(head) < 2 {
		return nil
	}
	enc := head[0]
	p := head[1:]
	var mime string
	if id == "PIC" {
		if len(p) < 3 {
			return nil
		}
		switch strings.ToUpper(string(p[:3])) {
		case "JPG":
			mime = "image/jpeg"
		case "PNG":
			mime = "image/png"
		default:
			mime = "image/" + strings.ToLower(strings.TrimRight(string(p[:3]), "\x00 "))
		}
		p = p[3:]
	} else {
		end := bytes.IndexByte(p, 0)
		if end < 0 {
			return nil
		}
		mime = strings.ToLower(string(p[:end]))
		if mime != "" && !strings.Contains(mime, "/") {
			mime = "image/" + mime
		}
		p = p[end+1:]
	}
	if len(p) < 1 {
		return nil
	}
	ptype := p[0]
	p = p[1:]
	// The description ends with a NUL, two NULs (aligned) in UTF-16.
	var end int
	if enc == 1 || enc == 2 {
		end = -1
		for i := 0; i+1 < len(p); i += 2 {
			if p[i] == 0 && p[i+1] == 0 {
				end = i + 2
				break
			}
		}
	} else if i := bytes.IndexByte(p, 0); i >= 0 {
		end = i + 1
	} else {
		end = -1
	}
	if end < 0 {
		return nil // description longer than we read, or missing its end
	}
	p = p[end:]
	start := int64(len(head) - len(p))
	if start >= n {
		return nil
	}
	t.cover = &Cover{MIME: mime, Offset: b.base + data + start, Size: n - start}
	t.coverType = ptype
	return nil
}

// merge copies what the tag found into rep, keeping what rep already has
// (the first tag read wins).
func (t *id3Tags) merge(rep *Report) {
	mergeTags(&rep.Tags, t.Tags)
	if rep.Cover == nil && t.cover != nil {
		rep.Cover = t.cover
	}
}

// mergeTags fills the empty fields of dst from src.
func mergeTags(dst *Tags, src Tags) {
	if dst.Title == "" {
		dst.Title = src.Title
	}
	if len(dst.Artists) == 0 {
		dst.Artists = src.Artists
	}
	if dst.Album == "" {
		dst.Album = src.Album
	}
	if len(dst.AlbumArtists) == 0 {
		dst.AlbumArtists = src.AlbumArtists
	}
	if dst.Track == 0 {
		dst.Track = src.Track
	}
	if dst.Disc == 0 {
		dst.Disc = src.Disc
	}
	if dst.Year == 0 {
		dst.Year = src.Year
	}
	if len(dst.Genres) == 0 {
		dst.Genres = src.Genres
	}
}

// parseID3v1 reads a 128-byte ID3v1(.1) tag ("TAG" ...).
func parseID3v1(b []byte) Tags {
	var t Tags
	if len(b) != 128 || string(b[:3]) != "TAG" {
		return t
	}
	field := func(f []byte) string {
		if i := bytes.IndexByte(f, 0); i >= 0 {
			f = f[:i]
		}
		return strings.TrimSpace(latin1(f))
	}
	t.Title = field(b[3:33])
	if a := field(b[33:63]); a != "" {
		t.Artists = []string{a}
	}
	t.Album = field(b[63:93])
	t.Year = leadingInt(field(b[93:97]))
	if b[125] == 0 && b[126] != 0 { // ID3v1.1 track number
		t.Track = int(b[126])
	}
	if g := genreName(strconv.Itoa(int(b[127]))); g != "" {
		t.Genres = []string{g}
	}
	return t
}

// id3v1Genres is the ID3v1 genre list with Winamp's extensions.
var id3v1Genres = [...]string{
	"Blues", "Classic Rock", "Country", "Dance", "Disco", "Funk", "Grunge", "Hip-Hop",
	"Jazz", "Metal", "New Age", "Oldies", "Other", "Pop", "R&B", "Rap",
	"Reggae", "Rock", "Techno", "Industrial", "Alternative", "Ska", "Death Metal", "Pranks",
	"Soundtrack", "Euro-Techno", "Ambient", "Trip-Hop", "Vocal", "Jazz+Funk", "Fusion", "Trance",
	"Classical", "Instrumental", "Acid", "House", "Game", "Sound Clip", "Gospel", "Noise",
	"AlternRock", "Bass", "Soul", "Punk", "Space", "Meditative", "Instrumental Pop", "Instrumental Rock",
	"Ethnic", "Gothic", "Darkwave", "Techno-Industrial", "Electronic", "Pop-Folk", "Eurodance", "Dream",
	"Southern Rock", "Comedy", "Cult", "Gangsta", "Top 40", "Christian Rap", "Pop/Funk", "Jungle",
	"Native American", "Cabaret", "New Wave", "Psychedelic", "Rave", "Showtunes", "Trailer", "Lo-Fi",
	"Tribal", "Acid Punk", "Acid Jazz", "Polka", "Retro", "Musical", "Rock & Roll", "Hard Rock",
	"Folk", "Folk-Rock", "National Folk", "Swing", "Fast Fusion", "Bebob", "Latin", "Revival",
	"Celtic", "Bluegrass", "Avantgarde", "Gothic Rock", "Progressive Rock", "Psychedelic Rock", "Symphonic Rock", "Slow Rock",
	"Big Band", "Chorus", "Easy Listening", "Acoustic", "Humour", "Speech", "Chanson", "Opera",
	"Chamber Music", "Sonata", "Symphony", "Booty Bass", "Primus", "Porn Groove", "Satire", "Slow Jam",
	"Club", "Tango", "Samba", "Folklore", "Ballad", "Power Ballad", "Rhythmic Soul", "Freestyle",
	"Duet", "Punk Rock", "Drum Solo", "A capella", "Euro-House", "Dance Hall", "Goa", "Drum & Bass",
	"Club-House", "Hardcore Techno", "Terror", "Indie", "BritPop", "Negerpunk", "Polsk Punk", "Beat",
	"Christian Gangsta Rap", "Heavy Metal", "Black Metal", "Crossover", "Contemporary Christian", "Christian Rock", "Merengue", "Salsa",
	"Thrash Metal", "Anime", "JPop", "Synthpop",
}
