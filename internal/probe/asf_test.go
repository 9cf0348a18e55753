package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
)

func asfFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/asf/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func probeASFBytes(b []byte, opts Options) (*Report, error) {
	return Probe(context.Background(), bytes.NewReader(b), int64(len(b)), "x.wma", opts)
}

var (
	asfWMAReport = Report{
		Container: "asf", Duration: 5.01525, BitrateAvg: 31870, BitratePeak: 32190,
		PeakWindow: 4, PeakMethod: Exact,
		Streams: []Stream{{Type: "audio", Codec: "wmav2", SampleRate: 22050, Channels: 1}},
		Tags: Tags{
			Title: "Wma Title", Artists: []string{"Wma Artist"}, Album: "Wma Album",
			AlbumArtists: []string{"Wma Album Artist"}, Track: 3, Year: 2019, Genres: []string{"Jazz"},
		},
	}
	asfWMVReport = Report{
		Container: "asf", Duration: 5.046, BitrateAvg: 79430, BitratePeak: 81432,
		PeakWindow: 4, PeakMethod: Exact,
		Streams: []Stream{
			{Type: "video", Codec: "wmv2", Width: 64, Height: 64},
			{Type: "audio", Codec: "wmav2", SampleRate: 22050, Channels: 1},
		},
	}
)

func TestASF(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		path string
		want Report
	}{
		{"testdata/asf/wmav2-tags.wma", asfWMAReport},
		{"testdata/asf/wmv2-wmav2.wmv", asfWMVReport},
	} {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			checkReport(t, tt.path, &tt.want)
		})
	}
}

// asfObject builds an ASF object: GUID, size, body.
func asfObject(guid [16]byte, body ...[]byte) []byte {
	b := slicesConcat(body...)
	return slicesConcat(guid[:], binary.LittleEndian.AppendUint64(nil, uint64(24+len(b))), b)
}

func asfUTF16(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return append(b, 0, 0)
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }

// asfPicture is a WM/Picture value: type, data length, MIME type,
// description, data.
func asfPicture(kind byte, data []byte) []byte {
	return slicesConcat([]byte{kind}, le32(uint32(len(data))), asfUTF16("image/png"), asfUTF16(""), data)
}

// asfAddObjects appends objects to the Header Object of an ASF file.
func asfAddObjects(t *testing.T, b []byte, objs ...[]byte) []byte {
	t.Helper()
	size := binary.LittleEndian.Uint64(b[16:])
	count := binary.LittleEndian.Uint32(b[24:])
	extra := slicesConcat(objs...)
	h := slicesConcat(b[:16], binary.LittleEndian.AppendUint64(nil, size+uint64(len(extra))),
		le32(count+uint32(len(objs))), b[28:size], extra)
	return append(h, b[size:]...)
}

// TestASFCover: a WM/Picture in the Extended Content Description, or in a
// Metadata Library inside the Header Extension; a front cover wins over
// another picture.
func TestASFCover(t *testing.T) {
	t.Parallel()
	b := asfFixture(t, "wmav2-tags.wma")
	png := []byte("\x89PNG\r\n\x1a\n-not-really-a-png-IEND\xaeB`\x82")
	other := []byte("\x89PNG\r\n\x1a\n-the-back-cover-IEND\xaeB`\x82")
	ecd := asfObject(asfExtContentGUID, le16(2),
		le16(uint16(len(asfUTF16("WM/Picture")))), asfUTF16("WM/Picture"), le16(1), le16(uint16(len(asfPicture(4, other)))), asfPicture(4, other),
		le16(uint16(len(asfUTF16("WM/Picture")))), asfUTF16("WM/Picture"), le16(1), le16(uint16(len(asfPicture(3, png)))), asfPicture(3, png))
	lib := asfObject(asfMetaLibGUID, le16(1),
		le16(0), le16(0), le16(uint16(len(asfUTF16("WM/Picture")))), le16(1), le32(uint32(len(asfPicture(3, png)))),
		asfUTF16("WM/Picture"), asfPicture(3, png))
	ext := asfObject(asfHeaderExtGUID, make([]byte, 18), le32(uint32(len(lib))), lib)
	for name, file := range map[string][]byte{
		"extended content description": asfAddObjects(t, b, ecd),
		"metadata library":             asfAddObjects(t, b, ext),
	} {
		rep, err := probeASFBytes(file, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := &Cover{MIME: "image/png", Offset: int64(bytes.LastIndex(file, png)), Size: int64(len(png))}
		if d := cmp.Diff(want, rep.Cover); d != "" {
			t.Errorf("%s: cover (-want +got):\n%s", name, d)
		}
		// The rest of the report is the plain file's.
		rep.Cover = nil
		if d := cmp.Diff(asfWMAReport, *rep); d != "" {
			t.Errorf("%s: report (-want +got):\n%s", name, d)
		}
	}
}

// TestASFNominal: a packet walk over the step budget falls back to the
// header's duration, the payload share of the packets walked, and the
// stated maximum bitrate (82 kbit/s: the streams' 50 and 32).
func TestASFNominal(t *testing.T) {
	t.Parallel()
	rep, err := probeASFBytes(asfFixture(t, "wmv2-wmav2.wmv"), Options{MaxSteps: 60})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PeakMethod != Nominal || rep.Duration != 5.046 || !within(rep.BitrateAvg, 79430, 0.1) || rep.BitratePeak != 82000 || len(rep.Streams) != 2 {
		t.Errorf("%+v", rep)
	}
}

func TestASFBroken(t *testing.T) {
	t.Parallel()
	b := asfFixture(t, "wmv2-wmav2.wmv")
	random := randomBytes(3, 4, 4096)
	for _, tt := range []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"header GUID only", b[:16], io.ErrUnexpectedEOF},
		{"first 100 bytes", b[:100], ErrCorrupt},
		{"random", random, ErrUnknownFormat},
		{"random after a header GUID", slicesConcat(b[:16], random), nil},
		{"random after the header", slicesConcat(b[:binary.LittleEndian.Uint64(b[16:])+50], random), nil},
	} {
		rep, err := probeASFBytes(tt.file, Options{})
		if tt.want == nil {
			if err != nil && (rep == nil || rep.Error == "") || err == nil && !(rep.Duration > 0) && !sizeOnly(rep) {
				t.Errorf("%s: %v %+v", tt.name, err, rep)
			}
			continue
		}
		if !errors.Is(err, tt.want) || rep == nil || rep.Error == "" || len(tt.file) > 16 && rep.Container != "asf" && tt.want != ErrUnknownFormat {
			t.Errorf("%s: error %v, want %v (%+v)", tt.name, err, tt.want, rep)
		}
	}
	for n := 0; n <= len(b); n += 211 {
		rep, err := probeASFBytes(b[:n], Options{})
		if err != nil && (rep == nil || rep.Error == "") || err == nil && !(rep.Duration > 0) && !sizeOnly(rep) {
			t.Errorf("prefix %d: %v %+v", n, err, rep)
		}
	}
}

// TestASFHuge: objects claiming gigabytes fail fast with little memory.
// Not parallel: it measures allocations.
func TestASFHuge(t *testing.T) {
	b := asfFixture(t, "wmav2-tags.wma")
	hdr := bytes.Clone(b)
	binary.LittleEndian.PutUint64(hdr[16:], 1<<40)
	// An Extended Content Description whose one value claims 64 KiB and
	// whose count claims 65535 descriptors.
	ecd := asfObject(asfExtContentGUID, le16(0xffff), le16(12), asfUTF16("title"), le16(0), le16(0xffff))
	bigTag := asfAddObjects(t, b, ecd)
	// A 2 GB file whose data object holds zeros after the real packets:
	// the packet walk runs out of budget and falls back to the header.
	size := int64(1 << 31)
	dataSize := binary.LittleEndian.Uint64(b[16:])
	bigData := bytes.Clone(b)
	binary.LittleEndian.PutUint64(bigData[dataSize+16:], uint64(size)-dataSize)
	binary.LittleEndian.PutUint64(bigData[dataSize+40:], 1<<40)
	for _, tt := range []struct {
		name string
		r    io.ReaderAt
		size int64
		want error
	}{
		{"header claiming 1 TB", bytes.NewReader(hdr), int64(len(hdr)), ErrCorrupt},
		{"tag value past its object", bytes.NewReader(bigTag), int64(len(bigTag)), nil},
		{"data object of 2 GB", zeroTail{bigData, size}, size, nil},
	} {
		rep, err, alloc := probeAllocs(tt.r, tt.size, "x.wma")
		if !errors.Is(err, tt.want) || err == nil && !(rep.Duration > 0) && !sizeOnly(rep) {
			t.Errorf("%s: error %v, want %v: %+v", tt.name, err, tt.want, rep)
		}
		t.Logf("%s: %v, %s, %d bytes allocated", tt.name, err, rep.PeakMethod, alloc)
		if alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated", tt.name, alloc)
		}
	}
}

// TestASFSizeOnly: a live broadcast (the File Properties' broadcast flag
// set: no duration stated) with more packets than the limits allow gets a
// size-only report with its streams and tags, not an error; walked whole,
// its packets give the duration.
func TestASFSizeOnly(t *testing.T) {
	t.Parallel()
	b := asfFixture(t, "wmav2-tags.wma")
	i := bytes.Index(b, asfFilePropsGUID[:])
	if i < 0 {
		t.Fatal("no file properties object")
	}
	// The object's body starts after its 24-byte header; flags at 64.
	b[i+24+64] |= 1
	rep, err := probeASFBytes(b, Options{MaxSteps: 60})
	if err != nil || !sizeOnly(rep) || rep.Container != "asf" || len(rep.Streams) != 1 || rep.Tags.Title == "" {
		t.Errorf("broadcast over the step budget: %v %+v", err, rep)
	}
	rep, err = probeASFBytes(b, Options{})
	if err != nil || !within(int64(rep.Duration*1000), 5015, 0.01) || rep.PeakMethod != Exact {
		t.Errorf("broadcast walked whole: %v %+v", err, rep)
	}
}
