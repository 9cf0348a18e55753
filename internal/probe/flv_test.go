package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
)

func flvFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/flv/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func probeFLVBytes(b []byte, opts Options) (*Report, error) {
	return Probe(context.Background(), bytes.NewReader(b), int64(len(b)), "x.flv", opts)
}

func TestFLV(t *testing.T) {
	t.Parallel()
	video := func(codec string) Stream {
		return Stream{Type: "video", Codec: codec, Width: 64, Height: 64, FrameRate: 10}
	}
	for _, tt := range []struct {
		path string
		want Report
	}{
		// The MP3 stream's last frame lasts as long as the mean (26 ms):
		// 5.042 s + 26.1 ms.
		{"testdata/flv/flv1-mp3.flv", Report{
			Container: "flv", Duration: 5.068124, BitrateAvg: 78541, BitratePeak: 80974,
			PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "audio", Codec: "mp3", SampleRate: 22050, Channels: 1}, video("flv1")},
			Tags:    Tags{Title: "Flv Title", Artists: []string{"Flv Artist"}},
		}},
		// H.264 with B-frames: presentation times (timestamp plus
		// composition offset) start at 0.2 s; the AAC audio at 0.154 s.
		{"testdata/flv/h264-aac.flv", Report{
			Container: "flv", Duration: 5.061435, BitrateAvg: 53771, BitratePeak: 54788,
			PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{video("h264"), {Type: "audio", Codec: "aac", SampleRate: 22050, Channels: 1}},
		}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			checkReport(t, tt.path, &tt.want)
		})
	}
}

// TestFLVNominal: a tag walk over the step budget falls back to
// onMetaData's duration and the media share of the tags walked.
func TestFLVNominal(t *testing.T) {
	t.Parallel()
	rep, err := probeFLVBytes(flvFixture(t, "flv1-mp3.flv"), Options{MaxSteps: 100})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PeakMethod != Nominal || rep.Duration != 5.05 || !within(rep.BitrateAvg, 78541, 0.1) || rep.BitratePeak < rep.BitrateAvg || len(rep.Streams) != 2 {
		t.Errorf("%+v", rep)
	}
}

func TestFLVBroken(t *testing.T) {
	t.Parallel()
	b := flvFixture(t, "flv1-mp3.flv")
	random := randomBytes(5, 6, 4096)
	for _, tt := range []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"header only", b[:13], ErrCorrupt},
		{"random", random, ErrUnknownFormat},
		{"random after the header", slicesConcat(b[:13], random), nil},
		{"data offset of 4 GB", slicesConcat(b[:5], []byte{0xff, 0xff, 0xff, 0xff}, b[9:]), ErrCorrupt},
	} {
		rep, err := probeFLVBytes(tt.file, Options{})
		if tt.want == nil {
			if err != nil && (rep == nil || rep.Error == "") || err == nil && !(rep.Duration > 0) && !sizeOnly(rep) {
				t.Errorf("%s: %v %+v", tt.name, err, rep)
			}
			continue
		}
		if !errors.Is(err, tt.want) || rep == nil || rep.Error == "" {
			t.Errorf("%s: error %v, want %v (%+v)", tt.name, err, tt.want, rep)
		}
	}
	for n := 0; n <= len(b); n += 331 {
		rep, err := probeFLVBytes(b[:n], Options{})
		if err != nil && (rep == nil || rep.Error == "") || err == nil && !(rep.Duration > 0) && !sizeOnly(rep) {
			t.Errorf("prefix %d: %v %+v", n, err, rep)
		}
	}
}

// flvTag builds a tag: type, 24-bit size, timestamp, stream ID, data,
// previous tag size.
func flvTag(typ byte, ms uint32, data []byte) []byte {
	h := []byte{typ, byte(len(data) >> 16), byte(len(data) >> 8), byte(len(data)), byte(ms >> 16), byte(ms >> 8), byte(ms), byte(ms >> 24), 0, 0, 0}
	return slicesConcat(h, data, binary.BigEndian.AppendUint32(nil, uint32(11+len(data))))
}

// TestFLVHuge: tags claiming 16 MB, and a file of gigabytes of empty
// tags, end quickly with little memory. Not parallel: it measures
// allocations.
func TestFLVHuge(t *testing.T) {
	b := flvFixture(t, "flv1-mp3.flv")
	head := b[:13]
	// A script tag claiming 16 MB in a small file; an AMF0 string
	// claiming 4 GB inside it.
	script := slicesConcat(head, []byte{18, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 2, 0, 10}, []byte("onMetaData\x08\x00\x00\x00\x01\x00\x05title\x0c\xff\xff\xff\xff"))
	// 2 GB: a real tag, then zeros, which read as empty tags of type 0.
	zeros := slicesConcat(head, flvTag(8, 0, []byte{0x2a, 1, 2, 3}))
	for _, tt := range []struct {
		name string
		r    io.ReaderAt
		size int64
		want error
	}{
		{"script tag claiming 16 MB", bytes.NewReader(script), int64(len(script)), ErrCorrupt},
		{"2 GB of empty tags", zeroTail{zeros, 1 << 31}, 1 << 31, ErrBudget},
	} {
		rep, err, alloc := probeAllocs(tt.r, tt.size, "x.flv")
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v: %+v", tt.name, err, tt.want, rep)
		}
		t.Logf("%s: %v, %d bytes allocated", tt.name, err, alloc)
		if alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated", tt.name, alloc)
		}
	}
}

// TestFLVSizeOnly: an FLV whose onMetaData states no duration, with more
// tags than the limits allow, gets a size-only report with its streams,
// not an error; walked whole, its tags give the duration.
func TestFLVSizeOnly(t *testing.T) {
	t.Parallel()
	b := flvFixture(t, "flv1-mp3.flv")
	i := bytes.Index(b, []byte("\x00\x08duration\x00"))
	if i < 0 {
		t.Fatal("no onMetaData duration")
	}
	clear(b[i+11 : i+19]) // the AMF0 number: 0
	rep, err := probeFLVBytes(b, Options{MaxSteps: 100})
	if err != nil || !sizeOnly(rep) || rep.Container != "flv" || len(rep.Streams) != 2 {
		t.Errorf("no duration, over the step budget: %v %+v", err, rep)
	}
	rep, err = probeFLVBytes(b, Options{})
	if err != nil || !(rep.Duration > 5) || rep.PeakMethod != Exact {
		t.Errorf("no duration, walked whole: %v %+v", err, rep)
	}
}
