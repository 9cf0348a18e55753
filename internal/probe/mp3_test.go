package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// probeCounted probes a fixture and returns the report, the error and the
// bytes read.
func probeCounted(t *testing.T, path string) (*Report, error, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cr := &readCounter{r: bytes.NewReader(b)}
	rep, err := Probe(context.Background(), cr, int64(len(b)), path, Options{})
	return rep, err, cr.n
}

// durationApprox compares durations to the microsecond.
var durationApprox = cmpopts.EquateApprox(0, 1e-6)

func TestMP3(t *testing.T) {
	t.Parallel()
	mono := []Stream{{Type: "audio", Codec: "mp3", SampleRate: 44100, Channels: 1}}
	// 231 frames of 1152 samples at 44.1 kHz.
	const frames231 = 231 * 1152.0 / 44100
	tests := []struct {
		path string
		want Report
	}{
		{"testdata/mp3/cbr128-id3v23.mp3", Report{
			Container: "mp3",
			// LAME: 231 frames less 576+529 samples of delay and 407 of padding.
			Duration: 6,
			// The peak is the average: the nominal 128000 is below it.
			BitrateAvg: 128730, BitratePeak: 128730, PeakWindow: 4, PeakMethod: Nominal,
			Streams: mono,
			Tags: Tags{Title: "Sine and Noise", Artists: []string{"Test Artist"}, Album: "Test Album",
				Track: 3, Year: 2021, Genres: []string{"Rock"}},
			Cover: &Cover{MIME: "image/png", Offset: 271, Size: 101},
		}},
		{"testdata/mp3/vbr-xing.mp3", Report{
			Container: "mp3", Duration: 6, BitrateAvg: 44793, BitratePeak: 50841, PeakWindow: 4, PeakMethod: Index,
			Streams: mono,
		}},
		// MPEG-2 at 22.05 kHz: 576 samples a frame, and LAME's delay
		// and padding are 69 ms of them.
		{"testdata/mp3/vbr-xing-22k.mp3", Report{
			Container: "mp3", Duration: 6, BitrateAvg: 21254, BitratePeak: 27462, PeakWindow: 4, PeakMethod: Index,
			Streams: []Stream{{Type: "audio", Codec: "mp3", SampleRate: 22050, Channels: 1}},
		}},
		{"testdata/mp3/vbr-noxing.mp3", Report{
			Container: "mp3", Duration: frames231, BitrateAvg: 44538, BitratePeak: 50130, PeakWindow: 4, PeakMethod: Exact,
			Streams: mono,
		}},
		{"testdata/mp3/vbri.mp3", Report{
			Container: "mp3", Duration: frames231, BitrateAvg: 44538, BitratePeak: 49948, PeakWindow: 4, PeakMethod: Index,
			Streams: mono,
		}},
		{"testdata/mp3/id3v24-multi.mp3", Report{
			Container: "mp3", Duration: frames231, BitrateAvg: 44538, BitratePeak: 50130, PeakWindow: 4, PeakMethod: Exact,
			Streams: mono,
			Tags: Tags{Title: "Two Artists", Artists: []string{"Alice", "Bob"}, Album: "Duets",
				AlbumArtists: []string{"Various Artists"}, Track: 7, Disc: 2, Year: 2019, Genres: []string{"Rock"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			rep, err, read := probeCounted(t, tt.path)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if diff := cmp.Diff(&tt.want, rep, durationApprox); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			// Headers, tags and tails only; the frame scan reads 4 bytes
			// a frame.
			if read > 64<<10 {
				t.Errorf("read %d bytes, want ≤ 64 KiB", read)
			}
		})
	}
}

func TestMP3Broken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want error
	}{
		{"testdata/mp3/truncated.mp3", io.ErrUnexpectedEOF},
		{"testdata/mp3/empty.mp3", io.EOF},
		{"testdata/mp3/random.mp3", ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			rep, err, _ := probeCounted(t, tt.path)
			if !errors.Is(err, tt.want) {
				t.Errorf("Probe: %v, want %v", err, tt.want)
			}
			if rep == nil || rep.Error == "" {
				t.Errorf("report %+v carries no error", rep)
			}
		})
	}
}

func syncsafeBytes(n int) []byte {
	return []byte{byte(n >> 21 & 0x7f), byte(n >> 14 & 0x7f), byte(n >> 7 & 0x7f), byte(n & 0x7f)}
}

// id3v23 builds an ID3v2.3 tag of the given body size (syncsafe) whose
// first frame has the given id and (plain 32-bit) size.
func id3v23(tagSize int, id string, frameSize uint32, data []byte) []byte {
	b := append([]byte("ID3\x03\x00\x00"), syncsafeBytes(tagSize)...)
	b = append(b, id...)
	b = binary.BigEndian.AppendUint32(b, frameSize)
	b = append(b, 0, 0)
	return append(b, data...)
}

// TestID3Budget: frames claiming gigabytes fail fast, or are skipped,
// without being allocated. Not parallel: MemStats counts the whole
// process, and top-level tests that are not parallel run alone.
func TestID3Budget(t *testing.T) {
	const big = 3 << 30
	tests := []struct {
		name string
		head []byte
	}{
		{"2 GB APIC overrunning its tag", id3v23(0x0fffffff, "APIC", 2<<30, nil)},
		{"200 MB APIC inside a 256 MB tag", id3v23(0x0fffffff, "APIC", 200<<20, []byte("\x00image/jpeg\x00\x03\x00"))},
		{"200 MB TIT2 inside a 256 MB tag", id3v23(0x0fffffff, "TIT2", 200<<20, []byte{3})},
		{"256 MB unsynchronised tag", append([]byte("ID3\x03\x00\x80"), syncsafeBytes(0x0fffffff)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			rep, err := Probe(context.Background(), zeroTail{tt.head, big}, big, "x.mp3", Options{})
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Errorf("Probe of a file of zeros succeeded: %+v", rep)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Errorf("Probe allocated %d bytes", alloc)
			}
		})
	}
}

// TestID3 covers what the fixtures do not: v2.2, v2.4 footers, extended
// headers, unsynchronisation, UTF-16, genre references, APE and ID3v1.
func TestID3(t *testing.T) {
	t.Parallel()
	frame3 := func(id string, data []byte) []byte {
		b := append([]byte(id), 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint32(b[4:], uint32(len(data)))
		return append(b, data...)
	}
	frame4 := func(id string, flags uint16, data []byte) []byte {
		b := append([]byte(id), syncsafeBytes(len(data))...)
		b = binary.BigEndian.AppendUint16(b, flags)
		return append(b, data...)
	}
	frame2 := func(id string, data []byte) []byte {
		n := len(data)
		return append(append([]byte(id), byte(n>>16), byte(n>>8), byte(n)), data...)
	}
	tag := func(ver, flags byte, body []byte) []byte {
		b := append([]byte{'I', 'D', '3', ver, 0, flags}, syncsafeBytes(len(body))...)
		return append(b, body...)
	}
	utf16 := []byte{1, 0xff, 0xfe, 'H', 0, 'i', 0, 0, 0}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	tests := []struct {
		name      string
		tag       []byte
		want      Tags
		coverMIME string // "": no cover
		coverData string // the picture bytes, found in tag for the offset
	}{
		{"v2.2", tag(2, 0, cat(
			frame2("TT2", []byte("\x00Old")), frame2("TP1", []byte("\x00AC/DC")), frame2("TCO", []byte("\x00(13)")),
			frame2("TYE", []byte("\x001999")), frame2("PIC", []byte("\x00JPG\x03desc\x00JFIF")))),
			Tags{Title: "Old", Artists: []string{"AC/DC"}, Year: 1999, Genres: []string{"Pop"}},
			"image/jpeg", "JFIF"},
		{"v2.3 UTF-16 and refined genre", tag(3, 0, cat(
			frame3("TIT2", utf16), frame3("TCON", []byte("\x00(4)Eurodisco")), frame3("TRCK", []byte("\x0005/10")))),
			Tags{Title: "Hi", Genres: []string{"Eurodisco"}, Track: 5}, "", ""},
		{"v2.3 extended header", tag(3, 0x40, cat(
			[]byte{0, 0, 0, 6, 0, 0, 0, 0, 0, 0}, frame3("TALB", []byte("\x00Ext")))),
			Tags{Album: "Ext"}, "", ""},
		{"v2.3 unsynchronised", tag(3, 0x80, resync(cat(
			frame3("TIT2", []byte("\x00A\xff\xe0B")), frame3("TPE1", []byte{0, 0xff, 0xff, 0})))),
			Tags{Title: "A\u00ff\u00e0B", Artists: []string{"\u00ff\u00ff"}}, "", ""},
		{"v2.4 footer, multi-values, frame flags", func() []byte {
			body := cat(
				frame4("TPE1", 0, []byte("\x03A\x00B\x00")),
				frame4("TIT2", 0x0001, []byte("\x00\x00\x00\x04\x03Len")), // data length indicator
				frame4("TALB", 0x0008, []byte("\x03zipped")),              // compressed: skipped
				frame4("TCON", 0, []byte("\x0317\x00Jazz")),
				frame4("APIC", 0, []byte("\x03image/png\x00\x03\x00PNG")),
			)
			t := tag(4, 0x10, body)
			return append(t, '3', 'D', 'I', 4, 0, 0x10, t[6], t[7], t[8], t[9])
		}(),
			Tags{Title: "Len", Artists: []string{"A", "B"}, Genres: []string{"Rock", "Jazz"}},
			"image/png", "PNG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &source{ctx: context.Background(), r: bytes.NewReader(tt.tag), size: int64(len(tt.tag)), budget: 1 << 20, steps: 1000}
			var rep Report
			n, err := parseID3v2(s, 0, &rep)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(tt.tag)) {
				t.Errorf("tag size %d, want %d", n, len(tt.tag))
			}
			if diff := cmp.Diff(tt.want, rep.Tags); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
			var want *Cover
			if tt.coverMIME != "" {
				want = &Cover{MIME: tt.coverMIME, Offset: int64(bytes.LastIndex(tt.tag, []byte(tt.coverData))), Size: int64(len(tt.coverData))}
			}
			if diff := cmp.Diff(want, rep.Cover); diff != "" {
				t.Errorf("cover (-want +got):\n%s", diff)
			}
		})
	}
}

// resync applies unsynchronisation: a 0x00 after every 0xFF.
func resync(b []byte) []byte {
	var out []byte
	for _, c := range b {
		out = append(out, c)
		if c == 0xff {
			out = append(out, 0)
		}
	}
	return out
}

// TestMP3Tail: APEv2 and ID3v1 at the end are not audio, and ID3v1 fills
// the tags ID3v2 lacks.
func TestMP3Tail(t *testing.T) {
	t.Parallel()
	audio, err := os.ReadFile("testdata/mp3/vbr-noxing.mp3")
	if err != nil {
		t.Fatal(err)
	}
	ape := make([]byte, 32+40)
	copy(ape[40:], "APETAGEX")
	binary.LittleEndian.PutUint32(ape[40+8:], 2000)
	binary.LittleEndian.PutUint32(ape[40+12:], 40+32) // items and footer
	v1 := make([]byte, 128)
	copy(v1, "TAG")
	copy(v1[3:], "V1 Title")
	copy(v1[33:], "V1 Artist")
	copy(v1[93:], "1987")
	v1[126], v1[127] = 9, 17
	file := bytes.Join([][]byte{audio, ape, v1}, nil)
	rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.mp3", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := Tags{Title: "V1 Title", Artists: []string{"V1 Artist"}, Year: 1987, Track: 9, Genres: []string{"Rock"}}
	if diff := cmp.Diff(want, rep.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if rep.BitrateAvg != 44538 || rep.PeakMethod != Exact {
		t.Errorf("average %d (%s), want 44538 (exact): the tags counted as audio", rep.BitrateAvg, rep.PeakMethod)
	}
}

// TestMP3ScanBudget: a VBR file without a header, too big to scan within
// the byte budget, gets an honest estimate instead of an error.
func TestMP3ScanBudget(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/mp3/vbr-noxing.mp3")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Probe(context.Background(), bytes.NewReader(b), int64(len(b)), "x.mp3", Options{MaxBytes: 24 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PeakMethod != Nominal || rep.Duration <= 0 || rep.BitratePeak < rep.BitrateAvg {
		t.Errorf("report %+v: want a nominal estimate", rep)
	}
}

// TestIndexPeak: a seek table's peak is the highest 4 s rate on the line
// through its marks, whatever the length of its segments.
func TestIndexPeak(t *testing.T) {
	t.Parallel()
	// marks builds cumulative marks every step seconds for rates given
	// per segment in bits per second.
	marks := func(step float64, rates ...float64) []Packet {
		m := []Packet{{}}
		for i, r := range rates {
			m = append(m, Packet{Time: float64(i+1) * step, Bytes: m[i].Bytes + int64(r*step/8)})
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		marks []Packet
		want  int64
	}{
		// A 20-minute constant file with a Xing table: 12 s segments.
		// Counting a segment over the window said 3× the rate.
		{"long segments, constant", marks(12, 42000, 42000, 42000, 42000, 42000), 42000},
		{"long segments, one loud", marks(12, 42000, 84000, 42000), 84000},
		// Short segments: a 1 s spike is averaged over its 4 s window.
		{"short segments, spike", marks(1, 40000, 40000, 40000, 200000, 40000, 40000, 40000), 80000},
		// Uneven: a 4 s window across two 2.5 s segments of 100k and
		// 60k, rest 20k: 2.5 s × 100k + 1.5 s × 60k over 4 s = 85k.
		{"window across segments", marks(2.5, 20000, 100000, 60000, 20000, 20000), 85000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last := tc.marks[len(tc.marks)-1]
			avg := int64(float64(last.Bytes) * 8 / last.Time)
			got := indexPeak(tc.marks, 4, last.Time, avg)
			if d := got - tc.want; d < -2 || d > 2 {
				t.Errorf("peak %d, want %d", got, tc.want)
			}
		})
	}
}
