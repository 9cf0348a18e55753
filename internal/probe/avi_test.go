package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func aviVideo() Stream {
	return Stream{Type: "video", Codec: "mpeg4", Width: 64, Height: 64, FrameRate: 10}
}

func aviFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/avi/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// aviRename renames the first chunk called from (at or after start) to to.
func aviRename(t *testing.T, b []byte, from, to string, start int) []byte {
	t.Helper()
	i := bytes.Index(b[start:], []byte(from))
	if i < 0 {
		t.Fatalf("no %q chunk", from)
	}
	b = bytes.Clone(b)
	copy(b[start+i:], to)
	return b
}

func probeAVIBytes(b []byte, opts Options) (*Report, error) {
	return Probe(context.Background(), bytes.NewReader(b), int64(len(b)), "x.avi", opts)
}

func TestAVI(t *testing.T) {
	mp3 := Stream{Type: "audio", Codec: "mp3", SampleRate: 22050, Channels: 1}
	mp3Report := Report{
		Container: "avi", Duration: 6.1, BitrateAvg: 72236, BitratePeak: 75552,
		PeakWindow: 4, PeakMethod: Exact, Streams: []Stream{aviVideo(), mp3},
	}
	tagged := mp3Report
	tagged.Tags = Tags{Title: "Avi Title", Artists: []string{"Avi Artist"}}
	plain := aviFixture(t, "mpeg4-mp3.avi")
	tests := []struct {
		name string
		file []byte
		opts Options
		want Report
	}{
		{"mpeg4-mp3", plain, Options{}, mp3Report},
		{"mpeg4-mp3-tags", aviFixture(t, "mpeg4-mp3-tags.avi"), Options{}, tagged},
		{"mpeg4-pcm", aviFixture(t, "mpeg4-pcm.avi"), Options{}, Report{
			Container: "avi", Duration: 6, BitrateAvg: 169117, BitratePeak: 173218,
			PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{aviVideo(), {Type: "audio", Codec: "pcm_s16le", SampleRate: 8000, Channels: 1}},
		}},
		// The audio outlasts the video; its 131 non-empty chunks of 1024
		// samples give the duration (the strh length also counts the
		// empty chunks of the encoder's priming).
		{"h264-aac", aviFixture(t, "h264-aac.avi"), Options{}, Report{
			Container: "avi", Duration: float64(131*1024) / 22050, BitrateAvg: 50995, BitratePeak: 52994,
			PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "video", Codec: "h264", Width: 64, Height: 64, FrameRate: 10}, {Type: "audio", Codec: "aac", SampleRate: 22050, Channels: 1}},
		}},
		// Without idx1 the movi chunk headers give the same packets.
		{"no idx1: movi walk", aviRename(t, plain, "idx1", "JUNK", 0), Options{}, mp3Report},
		// An idx1 claiming 2 GB in a small file holds what the file holds.
		{"idx1 claiming 2 GB", aviIdx1Size(t, plain, 1<<31), Options{}, mp3Report},
	}
	for _, tt := range tests {
		rep, err := probeAVIBytes(tt.file, tt.opts)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if d := cmp.Diff(tt.want, *rep); d != "" {
			t.Errorf("%s: report (-want +got):\n%s", tt.name, d)
		}
	}
}

func aviIdx1Size(t *testing.T, b []byte, size uint32) []byte {
	t.Helper()
	i := bytes.LastIndex(b, []byte("idx1"))
	if i < 0 {
		t.Fatal("no idx1")
	}
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[i+4:], size)
	return b
}

// TestAVINominal: a walk over the step budget, and an OpenDML file, fall
// back to the headers' duration and the movi size.
func TestAVINominal(t *testing.T) {
	plain := aviFixture(t, "mpeg4-mp3.avi")
	noIdx := aviRename(t, plain, "idx1", "JUNK", 0)
	// ffmpeg reserves room for each stream's OpenDML super index with a
	// JUNK chunk in its strl: an indx there makes the file OpenDML.
	odml := aviRename(t, plain, "JUNK", "indx", bytes.Index(plain, []byte("strl")))
	for name, tt := range map[string]struct {
		file []byte
		opts Options
	}{
		"walk over the step budget": {noIdx, Options{MaxSteps: 100}},
		"OpenDML":                   {odml, Options{}},
	} {
		rep, err := probeAVIBytes(tt.file, tt.opts)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if rep.PeakMethod != Nominal || rep.Duration != 6.1 || !within(rep.BitrateAvg, 72236, 0.05) || rep.BitratePeak != rep.BitrateAvg || len(rep.Streams) != 2 {
			t.Errorf("%s: %+v", name, rep)
		}
	}
}

func TestAVIMatch(t *testing.T) {
	b := aviFixture(t, "mpeg4-pcm.avi")
	if matchWAV(b[:64], ".avi") {
		t.Error("the wav parser claims an AVI")
	}
	if !matchAVI(b[:64], ".wav") {
		t.Error("matchAVI misses an AVI")
	}
}

func TestAVIBroken(t *testing.T) {
	b := aviFixture(t, "mpeg4-mp3.avi")
	random := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	randomAVI := append([]byte("RIFF\x00\x10\x00\x00AVI "), random...)
	for _, tt := range []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"header only", b[:12], ErrCorrupt},
		{"first 100 bytes", b[:100], io.ErrUnexpectedEOF},
		{"first 1000 bytes", b[:1000], io.ErrUnexpectedEOF},
		{"random", random, ErrUnknownFormat},
		{"random after an AVI header", randomAVI, nil},
	} {
		rep, err := probeAVIBytes(tt.file, Options{})
		if tt.want == nil { // whatever it finds, cleanly
			if err != nil && (rep == nil || rep.Error == "") || err == nil && !(rep.Duration > 0) {
				t.Errorf("%s: %v %+v", tt.name, err, rep)
			}
			continue
		}
		if !errors.Is(err, tt.want) || rep == nil || rep.Error == "" {
			t.Errorf("%s: error %v, want %v (%+v)", tt.name, err, tt.want, rep)
		}
	}
	// Every prefix probes cleanly: an error carried by the report, or a
	// report with a duration.
	for n := 0; n <= len(b); n += 997 {
		rep, err := probeAVIBytes(b[:n], Options{})
		if err != nil && (rep == nil || rep.Error == "") || err == nil && !(rep.Duration > 0) {
			t.Errorf("prefix %d: %v %+v", n, err, rep)
		}
	}
}

// TestAVIHuge: chunks claiming 2 GB fail fast with little memory. Not
// parallel: it measures allocations.
func TestAVIHuge(t *testing.T) {
	b := aviFixture(t, "mpeg4-mp3.avi")
	hdrl := bytes.Clone(b)
	binary.LittleEndian.PutUint32(hdrl[bytes.Index(hdrl, []byte("hdrl"))-4:], 1<<31)
	movi := bytes.Index(b, []byte("movi")) - 8
	head := slicesConcat(b[:movi], []byte("LIST"), le32(1<<31), []byte("movi"))
	tests := []struct {
		name string
		r    io.ReaderAt
		size int64
		want error
	}{
		{"hdrl claiming 2 GB", bytes.NewReader(hdrl), int64(len(hdrl)), ErrCorrupt},
		// The file really is 2 GB: the zeros in the movi LIST are no
		// stream's chunks, and the walk runs out of steps: nominal.
		{"movi of 2 GB of zeros", zeroTail{head, int64(len(head)) + 1<<31}, int64(len(head)) + 1<<31, nil},
	}
	for _, tt := range tests {
		rep, err, alloc := probeAllocs(tt.r, tt.size, "x.avi")
		if !errors.Is(err, tt.want) || err == nil && rep.PeakMethod != Nominal {
			t.Errorf("%s: error %v, want %v: %+v", tt.name, err, tt.want, rep)
		}
		t.Logf("%s: %v, %d bytes allocated", tt.name, err, alloc)
		if alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated", tt.name, alloc)
		}
	}
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
