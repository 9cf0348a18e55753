package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The fixtures (testdata/make-mp4.sh) are 4 s long: 64x64 video at 10
// frames/s, mono 22,050 Hz audio. ffprobe's figures are in TestOracle;
// the expected reports here pin the parser's own.
func TestMP4(t *testing.T) {
	t.Parallel()
	aac := Stream{Type: "audio", Codec: "aac", SampleRate: 22050, Channels: 1}
	h264 := Stream{Type: "video", Codec: "h264", Width: 64, Height: 64, FrameRate: 10}
	tests := []struct {
		path string
		want Report
	}{
		{"testdata/mp4/aac-tagged-cover.m4a", Report{
			Container: "mp4", Duration: 4, BitrateAvg: 24536, BitratePeak: 24536, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{aac},
			Tags: Tags{Title: "Tone", Artists: []string{"Alice"}, Album: "Fixtures", AlbumArtists: []string{"Various"},
				Track: 3, Disc: 1, Year: 2021, Genres: []string{"Test"}},
			Cover: &Cover{MIME: "image/png", Offset: 13590, Size: 96},
		}},
		{"testdata/mp4/alac.m4a", Report{
			Container: "mp4", Duration: 4, BitrateAvg: 236734, BitratePeak: 236734, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "audio", Codec: "alac", SampleRate: 22050, Channels: 1}},
			Tags:    Tags{Title: "Lossless"},
		}},
		{"testdata/mp4/h264-aac-faststart.mp4", Report{
			Container: "mp4", Duration: 4, BitrateAvg: 98256, BitratePeak: 98256, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{h264, aac}, Tags: Tags{Title: "Faststart"},
		}},
		// The same streams with moov after mdat.
		{"testdata/mp4/h264-aac-moovend.mp4", Report{
			Container: "mp4", Duration: 4, BitrateAvg: 98256, BitratePeak: 98256, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{h264, aac},
		}},
		// Fragments state no frame rate. The last AAC sample's trun
		// duration (136 samples) ends the file 40 ms before ffprobe's
		// packet list, which gives every AAC packet 1,024 samples.
		{"testdata/mp4/h264-aac-fragmented.mp4", Report{
			Container: "mp4", Duration: 4.0464843749999995, BitrateAvg: 106029, BitratePeak: 107252, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "video", Codec: "h264", Width: 64, Height: 64}, aac},
		}},
		// B-frames: samples are presented out of decode order.
		{"testdata/mp4/hevc-bframes-aac.mp4", Report{
			Container: "mp4", Duration: 4, BitrateAvg: 122768, BitratePeak: 122768, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "video", Codec: "hevc", Width: 64, Height: 64, FrameRate: 10}, aac},
		}},
		{"testdata/mp4/mpeg4-aac.mov", Report{
			Container: "mp4", Duration: 4, BitrateAvg: 126296, BitratePeak: 126296, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "video", Codec: "mpeg4", Width: 64, Height: 64, FrameRate: 10}, aac},
			Tags:    Tags{Title: "Movie", Artists: []string{"Dave"}, Year: 1999},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			checkReport(t, tt.path, &tt.want)
		})
	}
}

// TestMP4Window: the fixtures last as long as the default window, so their
// peak is their average; over a 1 s window the peak comes from the sample
// tables and must still match ffprobe's packets.
func TestMP4Window(t *testing.T) {
	t.Parallel()
	for _, path := range []string{
		"testdata/mp4/aac-tagged-cover.m4a", "testdata/mp4/alac.m4a", "testdata/mp4/h264-aac-faststart.mp4",
		"testdata/mp4/h264-aac-moovend.mp4", "testdata/mp4/h264-aac-fragmented.mp4", "testdata/mp4/hevc-bframes-aac.mp4",
		"testdata/mp4/mpeg4-aac.mov",
	} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			o, ok := oracle(t, path, 1)
			if !ok {
				t.Fatalf("ffprobe cannot read %s", path)
			}
			rep, err := probeFixture(t, path, Options{Window: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("peak %d, ffprobe %d, average %d", rep.BitratePeak, o.Peak, rep.BitrateAvg)
			if !within(rep.BitratePeak, o.Peak, 0.05) || rep.BitratePeak <= rep.BitrateAvg {
				t.Errorf("1 s peak %d, ffprobe %d, average %d", rep.BitratePeak, o.Peak, rep.BitrateAvg)
			}
		})
	}
}

// TestMP4Cover: the cover's offset and size point at the PNG itself.
func TestMP4Cover(t *testing.T) {
	t.Parallel()
	checkCoverPNG(t, "testdata/mp4/aac-tagged-cover.m4a")
}

// TestMP4Budget: over the step budget for the sample scan, the headers'
// durations and the size of mdat stand in, close to the exact figures.
func TestMP4Budget(t *testing.T) {
	t.Parallel()
	rep, err := probeFixture(t, "testdata/mp4/h264-aac-faststart.mp4", Options{MaxSteps: 100})
	if err != nil {
		t.Fatal(err)
	}
	const exact = 98256 // TestMP4
	if rep.PeakMethod != Nominal || rep.Duration != 4 || !within(rep.BitrateAvg, exact, 0.02) || rep.BitratePeak != rep.BitrateAvg {
		t.Errorf("duration %v, average %d, peak %d (%s); want 4, about %d, the average (nominal)",
			rep.Duration, rep.BitrateAvg, rep.BitratePeak, rep.PeakMethod, exact)
	}
}

// mp4Box builds a box from its type and body parts.
func mp4Box(typ string, parts ...[]byte) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	b = append(b, typ...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// be32 encodes 32-bit big-endian values.
func be32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func zeros(n int) []byte { return make([]byte, n) }

// mp4Synthetic builds what ffmpeg does not write: version 1 headers, a
// 4-bit stz2 table, an mp4a entry without esds, numeric genre (gnre), a
// JPEG cover and two artists. 16 samples of 1/8 s (2 s) hold 1..15 and 0
// bytes: 120 bytes in all. quicktime leaves out ftyp (an old QuickTime
// file starts with wide and mdat) and puts the title in QuickTime user
// data instead of iTunes tags.
func mp4Synthetic(quicktime bool) []byte {
	return mp4Build(quicktime, mp4Box("stts", be32(0, 1, 16, 1000)),
		mp4Box("stz2", be32(0, 4, 16), []byte{0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0}), 120)
}

// mp4Build builds the synthetic file around the given stts and sample
// size boxes, with mdat bytes of media data.
func mp4Build(quicktime bool, stts, sizes []byte, mdat int) []byte {
	data := func(kind uint32, v []byte) []byte { return mp4Box("data", be32(kind, 0), v) }
	stsd := mp4Box("stsd", be32(0, 1), mp4Box("mp4a",
		zeros(6), []byte{0, 1}, zeros(8), []byte{0, 2, 0, 16}, zeros(4), be32(8000<<16)))
	stbl := mp4Box("stbl", stsd, stts, sizes)
	mdia := mp4Box("mdia",
		mp4Box("mdhd", []byte{1, 0, 0, 0}, zeros(16), be32(8000), be64(16000), zeros(4)),
		mp4Box("hdlr", be32(0, 0), []byte("soun"), zeros(13)),
		mp4Box("minf", stbl))
	trak := mp4Box("trak",
		mp4Box("tkhd", []byte{1, 0, 0, 7}, zeros(16), be32(1, 0), be64(2000), zeros(52)), mdia)
	var udta []byte
	if quicktime {
		udta = mp4Box("udta", mp4Box("\xa9nam", []byte{0, 5, 0x55, 0xc4}, []byte("Synth")), zeros(4))
	} else {
		ilst := mp4Box("ilst",
			mp4Box("\xa9nam", data(1, []byte("Synth"))),
			mp4Box("\xa9ART", data(1, []byte("A")), data(1, []byte("B"))),
			mp4Box("gnre", data(0, []byte{0, 18})),
			mp4Box("trkn", data(0, []byte{0, 0, 0, 5, 0, 10, 0, 0})),
			mp4Box("disk", data(0, []byte{0, 0, 0, 2, 0, 3})),
			mp4Box("\xa9day", data(1, []byte("1999-01-01"))),
			mp4Box("covr", data(13, []byte("\xff\xd8jpeg\xff\xd9"))))
		udta = mp4Box("udta", mp4Box("meta", be32(0), mp4Box("hdlr", be32(0, 0), []byte("mdir"), zeros(13)), ilst))
	}
	moov := mp4Box("moov",
		mp4Box("mvhd", []byte{1, 0, 0, 0}, zeros(16), be32(1000), be64(2000), zeros(80)), trak, udta)
	mdatBox := mp4Box("mdat", zeros(mdat))
	if quicktime {
		return slicesConcat(mp4Box("wide"), mdatBox, moov)
	}
	return slicesConcat(mp4Box("ftyp", []byte("M4A "), be32(0), []byte("M4A isom")), moov, mdatBox)
}

func slicesConcat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestMP4Synthetic(t *testing.T) {
	t.Parallel()
	stream := []Stream{{Type: "audio", Codec: "aac", SampleRate: 8000, Channels: 2}}
	itunes := mp4Synthetic(false)
	cover := int64(bytes.Index(itunes, []byte("\xff\xd8jpeg")))
	tests := []struct {
		name string
		file []byte
		want Report
	}{
		{"itunes", itunes, Report{
			Container: "mp4", Duration: 2, BitrateAvg: 480, BitratePeak: 480, PeakWindow: 4, PeakMethod: Exact,
			Streams: stream,
			Tags: Tags{Title: "Synth", Artists: []string{"A", "B"}, Track: 5, Disc: 2, Year: 1999,
				Genres: []string{"Rock"}},
			Cover: &Cover{MIME: "image/jpeg", Offset: cover, Size: 8},
		}},
		{"quicktime", mp4Synthetic(true), Report{
			Container: "mp4", Duration: 2, BitrateAvg: 480, BitratePeak: 480, PeakWindow: 4, PeakMethod: Exact,
			Streams: stream, Tags: Tags{Title: "Synth"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Probe(context.Background(), bytes.NewReader(tt.file), int64(len(tt.file)), "x.mov", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
		})
	}
	// Over a 1 s window the peak is the densest eight samples: 8..15
	// bytes (92 bytes, 736 bit/s).
	got, err := Probe(context.Background(), bytes.NewReader(itunes), int64(len(itunes)), "x.m4a", Options{Window: time.Second})
	if err != nil || got.BitratePeak != 736 {
		t.Errorf("1 s peak %d (%v), want 736", got.BitratePeak, err)
	}
}

// TestMP4Bad: damaged files give an error, never a panic or a report
// without one.
func TestMP4Bad(t *testing.T) {
	t.Parallel()
	faststart, err := os.ReadFile("testdata/mp4/h264-aac-faststart.mp4")
	if err != nil {
		t.Fatal(err)
	}
	moovend, err := os.ReadFile("testdata/mp4/h264-aac-moovend.mp4")
	if err != nil {
		t.Fatal(err)
	}
	random := randomBytes(3, 4, 4096)
	ftyp := mp4Box("ftyp", []byte("isom"), be32(0))
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"zero length", nil, io.EOF},
		{"ftyp only", ftyp, ErrCorrupt},
		{"cut in the ftyp", faststart[:20], io.ErrUnexpectedEOF},
		{"cut in moov", faststart[:200], io.ErrUnexpectedEOF},
		{"cut in mdat", faststart[:len(faststart)/2], io.ErrUnexpectedEOF},
		{"moov at the end cut off", moovend[:len(moovend)-100], io.ErrUnexpectedEOF},
		{"random bytes", random, ErrUnknownFormat},
		{"random bytes after ftyp", append(append([]byte{}, ftyp...), random...), io.ErrUnexpectedEOF},
		{"box smaller than its header", append(append([]byte{}, ftyp...), be32(4, 0x6d6f6f76)...), ErrCorrupt},
		{"moov without tracks", append(append([]byte{}, ftyp...), mp4Box("moov")...), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Probe(context.Background(), bytes.NewReader(tt.file), int64(len(tt.file)), "x.mp4", Options{})
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if err != nil && rep.Error == "" {
				t.Errorf("report without its error: %+v", rep)
			}
		})
	}
}

// TestMP4Huge: boxes and tables claiming far more than the file holds
// fail fast without allocating what they claim. Not parallel: it measures
// the process's allocations.
func TestMP4Huge(t *testing.T) {
	ftyp := mp4Box("ftyp", []byte("isom"), be32(0))
	syn := mp4Synthetic(false)
	stz2 := slicesConcat([]byte("stz2"), be32(0, 4, 16))
	// The synthetic file's stz2 becomes an stsz claiming 2^32-1 entries
	// in its few bytes.
	bigTable := bytes.Replace(syn, stz2, slicesConcat([]byte("stsz"), be32(0, 0, 0xffffffff)), 1)
	// And a constant sample size for 2^32-1 samples: no table to check,
	// so the step budget stops the scan, and the headers stand in (a
	// nominal report, no error).
	bigConst := bytes.Replace(syn, stz2, slicesConcat([]byte("stsz"), be32(0, 1, 0xffffffff)), 1)
	bigConst = bytes.Replace(bigConst, be32(0, 1, 16, 1000), be32(0, 1, 0xffffffff, 8000), 1)
	moov2G := slicesConcat(ftyp, be32(1<<31), []byte("moov"), mp4Box("mvhd", zeros(100)))
	tests := []struct {
		name string
		r    io.ReaderAt
		size int64
		want error
	}{
		{"moov claiming 2 GB past the end", bytes.NewReader(moov2G), int64(len(moov2G)), io.ErrUnexpectedEOF},
		// The file really is 2 GB: the zeros after the mvhd are no box.
		{"moov of 2 GB of zeros", zeroTail{moov2G, int64(len(ftyp)) + 1<<31}, int64(len(ftyp)) + 1<<31, ErrCorrupt},
		{"mdat with a 2^62 largesize", bytes.NewReader(slicesConcat(ftyp, be32(1), []byte("mdat"), be64(1<<62))), int64(len(ftyp)) + 16, io.ErrUnexpectedEOF},
		{"stsz claiming 2^32-1 samples", bytes.NewReader(bigTable), int64(len(bigTable)), ErrCorrupt},
		{"2^32-1 samples of constant size", bytes.NewReader(bigConst), int64(len(bigConst)), nil},
	}
	for _, tt := range tests {
		rep, err, alloc := probeAllocs(tt.r, tt.size, "x.mp4")
		if !errors.Is(err, tt.want) || err == nil && rep.PeakMethod != Nominal {
			t.Errorf("%s: error %v, want %v: %+v", tt.name, err, tt.want, rep)
		}
		t.Logf("%s: %v, %d bytes allocated", tt.name, err, alloc)
		if alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated", tt.name, alloc)
		}
	}
}

// TestMP4LargeTables: tables of many chunks (40,000 samples: 156 KiB of
// stsz) give the same peak as Peak over the samples themselves, for every
// field width of the sizes and durations that vary.
func TestMP4LargeTables(t *testing.T) {
	t.Parallel()
	const n = 40000
	var packets []Packet
	var stts []byte
	var dts uint32
	sizes := make([]uint32, n)
	for i := range n {
		sizes[i] = uint32(i*7919%251 + 1)
		delta := uint32(1000)
		if i%3 == 2 {
			delta = 3000
		}
		stts = append(stts, be32(1, delta)...)
		packets = append(packets, Packet{Time: float64(dts) / 8000, Bytes: int64(sizes[i])})
		dts += delta
	}
	duration := float64(dts) / 8000
	sttsBox := mp4Box("stts", be32(0, n), stts)
	for _, bits := range []int{32, 16, 8, 4} {
		t.Run(strconv.Itoa(bits), func(t *testing.T) {
			t.Parallel()
			var table []byte
			want := packets
			switch bits {
			case 32:
				table = mp4Box("stsz", be32(0, 0, n), be32(sizes...))
			case 16:
				table = mp4Box("stz2", be32(0, 16, n))
				for _, v := range sizes {
					table = binary.BigEndian.AppendUint16(table, uint16(v))
				}
			case 8, 4:
				table = mp4Box("stz2", be32(0, uint32(bits), n))
				want = make([]Packet, n)
				for i := 0; i < n; i += 2 {
					a, b := sizes[i]%(1<<bits), sizes[i+1]%(1<<bits)
					if bits == 8 {
						table = append(table, byte(a), byte(b))
					} else {
						table = append(table, byte(a<<4|b))
					}
					want[i] = Packet{Time: packets[i].Time, Bytes: int64(a)}
					want[i+1] = Packet{Time: packets[i+1].Time, Bytes: int64(b)}
				}
			}
			binary.BigEndian.PutUint32(table, uint32(len(table)))
			var sum int64
			for _, p := range want {
				sum += p.Bytes
			}
			file := mp4Build(false, sttsBox, table, int(sum))
			rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.m4a", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if avg := int64(float64(sum) * 8 / duration); rep.Duration != duration || rep.BitrateAvg != avg {
				t.Errorf("duration %v, average %d; want %v, %d", rep.Duration, rep.BitrateAvg, duration, avg)
			}
			if p := Peak(want, 4, duration); rep.BitratePeak != p {
				t.Errorf("peak %d, want %d", rep.BitratePeak, p)
			}
		})
	}
}

// TestMP4Pending: the heap that puts samples in presentation order pops
// them sorted.
func TestMP4Pending(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	var h mp4Pending
	for range 1000 {
		h.push(mp4Pend{time: float64(rng.IntN(100))})
	}
	last := -1.0
	for len(h) > 0 {
		p := h.pop()
		if p.time < last {
			t.Fatalf("popped %v after %v", p.time, last)
		}
		last = p.time
	}
}
