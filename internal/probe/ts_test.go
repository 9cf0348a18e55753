package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"mustserv/internal/testenv"
)

// The fixtures (testdata/make-ts.sh): 7 s of 320x240 video at 25 fps,
// noise from 2.5 to 4 s, with audio; an audio-only CBR stream padded with
// null packets; and 32 s of 64x64 video with a noise burst every 12 s.
// The figures are ffprobe's (TestOracle checks them).
func TestTS(t *testing.T) {
	t.Parallel()
	video := func(codec string, w, h int, fps float64) Stream {
		return Stream{Type: "video", Codec: codec, Width: w, Height: h, FrameRate: fps}
	}
	audio := func(codec string, rate, channels int) Stream {
		return Stream{Type: "audio", Codec: codec, SampleRate: rate, Channels: channels}
	}
	tests := []struct {
		path string
		want Report
	}{
		{"testdata/ts/h264-aac.ts", Report{
			Container: "mpegts", Duration: 7.04, BitrateAvg: 202425, BitratePeak: 279132, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{video("h264", 320, 240, 25), audio("aac", 48000, 2)},
		}},
		// 192-byte packets; AC-3 as stream type 0x81.
		{"testdata/ts/h264-ac3.m2ts", Report{
			Container: "mpegts", Duration: 7.008, BitrateAvg: 232652, BitratePeak: 308484, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{video("h264", 320, 240, 25), audio("ac3", 48000, 2)},
		}},
		// E-AC-3 as private data with a DVB descriptor; no HEVC SPS
		// reading, so no picture size.
		{"testdata/ts/hevc-eac3.ts", Report{
			Container: "mpegts", Duration: 7.008, BitrateAvg: 223914, BitratePeak: 288724, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{video("hevc", 0, 0, 25), audio("eac3", 48000, 2)},
		}},
		// Null packets make up half the file: the average counts payload.
		{"testdata/ts/mp2-cbr.ts", Report{
			Container: "mpegts", Duration: 6.008168027210885, BitrateAvg: 63999, BitratePeak: 64366, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{audio("mp2", 44100, 1)},
		}},
		{"testdata/ts/long-h264-mp2.ts", Report{
			Container: "mpegts", Duration: 32.04, BitrateAvg: 42973, BitratePeak: 77174, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{video("h264", 64, 64, 10), audio("mp2", 16000, 1)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			checkReport(t, tt.path, &tt.want)
		})
	}
}

// TestTSSampled: over the budget, the head and tail give the duration and
// samples the peak (method index) and the payload's share (the average).
func TestTSSampled(t *testing.T) {
	t.Parallel()
	// 200 s at 25 fps: 100 kbit/s, and 300 kbit/s from 60 to 140 s.
	file, pk := tsSynth(0, 5000, func(i int) int {
		if i >= 60*25 && i < 140*25 {
			return 1500
		}
		return 500
	})
	exact := Peak(pk, 4, 200)
	for _, tt := range []struct {
		name     string
		maxBytes int64
		method   Method
	}{
		{"whole", 0, Exact},
		{"sampled", 2 << 20, Index},
	} {
		c := &readCounter{r: bytes.NewReader(file)}
		rep, err := Probe(context.Background(), c, int64(len(file)), "x.ts", Options{MaxBytes: tt.maxBytes})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		t.Logf("%s: read %d of %d bytes: %+v", tt.name, c.n, len(file), rep)
		if rep.PeakMethod != tt.method || math.Abs(rep.Duration-200) > 0.05 || !within(rep.BitrateAvg, 180000, 0.02) {
			t.Errorf("%s: %+v, want method %s, 200 s, 180 kbit/s", tt.name, rep, tt.method)
		}
		if !within(rep.BitratePeak, exact, 0.2) || float64(rep.BitratePeak) < 0.9*float64(exact) {
			t.Errorf("%s: peak %d, by every packet %d", tt.name, rep.BitratePeak, exact)
		}
	}

	// A fixture over the budget keeps its duration and about its average:
	// within 15 %, as the share of payload in its 64x64 picture's packets
	// runs from 37 % to 63 % from place to place, and two samples, the
	// head and the tail see only some places.
	b, err := os.ReadFile("testdata/ts/long-h264-mp2.ts")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Probe(context.Background(), bytes.NewReader(b), int64(len(b)), "x.ts", Options{MaxBytes: int64(len(b)) / 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.PeakMethod != Index || math.Abs(rep.Duration-32.04) > 0.05 || !within(rep.BitrateAvg, 42973, 0.15) || rep.BitratePeak < rep.BitrateAvg {
		t.Errorf("long-h264-mp2.ts over the budget: %+v", rep)
	}
}

// TestTSWrap: time stamps that wrap at 2^33 ticks (26.5 h) midway.
func TestTSWrap(t *testing.T) {
	t.Parallel()
	file, _ := tsSynth(1<<33-2*tsClock, 250, func(int) int { return 500 })
	rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.ts", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(rep.Duration-10) > 1e-9 || !within(rep.BitrateAvg, 100000, 1e-6) {
		t.Errorf("%+v, want 10 s at 100 kbit/s", rep)
	}
}

func TestTSMatch(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"testdata/ts/h264-aac.ts", "testdata/ts/h264-ac3.m2ts"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !matchTS(b[:64], "") {
			t.Errorf("matchTS misses %s", path)
		}
		if matchTS(b[:64], ".mp3") {
			t.Errorf("matchTS claims %s named .mp3", path)
		}
	}
	mp3, err := os.ReadFile("testdata/mp3/vbr-noxing.mp3")
	if err == nil && matchTS(mp3[:64], ".mp3") {
		t.Error("matchTS claims an MP3")
	}
	if matchTS(randomBytes(5, 6, 64), "") {
		t.Error("matchTS claims random bytes")
	}
}

// TestTSBroken: damaged files give an error carried by the report, or a
// report, never a panic.
func TestTSBroken(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("testdata/ts/h264-aac.ts")
	if err != nil {
		t.Fatal(err)
	}
	random := randomBytes(7, 8, 4096)
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"zero length", nil, io.EOF},
		{"less than a packet", good[:100], io.ErrUnexpectedEOF},
		{"two packets: SDT and PAT", good[:376], ErrCorrupt},
		{"random bytes", random, ErrUnknownFormat},
		{"random bytes after a sync byte", append([]byte{0x47, 0x40, 0x00, 0x10}, random...), ErrUnknownFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Probe(context.Background(), bytes.NewReader(tt.file), int64(len(tt.file)), "x.ts", Options{})
			if !errors.Is(err, tt.want) || rep.Error == "" {
				t.Errorf("error %v, want %v: %+v", err, tt.want, rep)
			}
		})
	}
	// Every prefix probes cleanly.
	for n := 0; n <= len(good); n += 1999 {
		rep, err := Probe(context.Background(), bytes.NewReader(good[:n]), int64(n), "x.ts", Options{})
		if err != nil && rep.Error == "" || err == nil && !(rep.Duration > 0) {
			t.Errorf("prefix %d: %v %+v", n, err, rep)
		}
	}
}

// TestTSResync: lost sync bytes and stray bytes in the middle cost the
// packets they hit, not the file.
func TestTSResync(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("testdata/ts/h264-aac.ts")
	if err != nil {
		t.Fatal(err)
	}
	badSync := bytes.Clone(good)
	for i := 500; i < 520; i++ {
		badSync[i*188] = 0
	}
	mid := len(good) / 2 / 188 * 188
	stray := slicesConcat(good[:mid+50], randomBytes(9, 10, 77), good[mid+50:])
	for name, file := range map[string][]byte{"bad sync bytes": badSync, "77 stray bytes": stray} {
		rep, err := Probe(context.Background(), bytes.NewReader(file), int64(len(file)), "x.ts", Options{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if rep.Duration != 7.04 || len(rep.Streams) != 2 || !within(rep.BitrateAvg, 202425, 0.05) || rep.PeakMethod != Exact {
			t.Errorf("%s: %+v", name, rep)
		}
	}
}

// TestTSHuge: a section and a PES claiming more than they hold, in a file
// that claims 2 GB, fail fast with little memory. Not parallel: it
// measures the process's allocations.
func TestTSHuge(t *testing.T) {
	file, _ := tsSynth(0, 8, func(int) int { return 100 })
	longPAT := bytes.Clone(file[:188*8])
	i := bytes.Index(longPAT, []byte{0x00, 0xb0, 13})
	binary.BigEndian.PutUint16(longPAT[i+1:], 0xbfff) // section_length 4095
	longPES := bytes.Clone(file[:188*8])
	i = bytes.Index(longPES, []byte{0, 0, 1, 0xe0})
	binary.BigEndian.PutUint16(longPES[i+4:], 0xffff) // PES_packet_length
	tests := []struct {
		name string
		head []byte
		want error
	}{
		{"PAT claiming 4 KB", longPAT, ErrCorrupt},
		{"PES claiming 64 KB", longPES, ErrCorrupt},
	}
	for _, tt := range tests {
		size := int64(2 << 30)
		rep, err, alloc := probeAllocs(zeroTail{tt.head, size}, size, "x.ts")
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v: %+v", tt.name, err, tt.want, rep)
		}
		t.Logf("%s: %v, %d bytes allocated", tt.name, err, alloc)
		if alloc > 1<<20 {
			t.Errorf("%s: %d bytes allocated", tt.name, alloc)
		}
	}
}

func TestTSFrameHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		frames  tsFrames
		h       []byte
		size    int
		dur     float64
		rate    int
		channel int
	}{
		{"adts 48 kHz stereo", tsADTS, []byte{0xff, 0xf1, 0x4c, 0x80, 0x2e, 0x7f, 0xfc}, 371, 1024.0 / 48000, 48000, 2},
		{"adts bad rate", tsADTS, []byte{0xff, 0xf1, 0x7c, 0x80, 0x2e, 0x7f, 0xfc}, 0, 0, 0, 0},
		{"mp2 44.1 kHz", tsMPA, []byte{0xff, 0xfd, 0x40, 0xc4}, 208, 1152.0 / 44100, 44100, 1},
		// AC-3, 48 kHz, 96 kbit/s (frmsizecod 12), 2/0 with LFE.
		{"ac3", tsAC3, []byte{0x0b, 0x77, 0, 0, 0x0c, 0x40, 0x44, 0x00}, 384, 1536.0 / 48000, 48000, 3},
		// E-AC-3, independent, frmsiz 191, 48 kHz, 6 blocks, 3/2.
		{"eac3", tsAC3, []byte{0x0b, 0x77, 0x00, 0xbf, 0x3e, 0x80, 0, 0}, 384, 1536.0 / 48000, 48000, 5},
		{"not a sync", tsAC3, []byte{0x0b, 0x78, 0, 0, 0x0c, 0x40, 0x41, 0x00}, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		st := &tsStream{frames: tt.frames}
		size, dur, _ := tsFrameHeader(st, tt.h)
		if size != tt.size || math.Abs(dur-tt.dur) > 1e-12 || st.stream.SampleRate != tt.rate || st.stream.Channels != tt.channel {
			t.Errorf("%s: size %d, %v s, %d Hz, %d channels; want %d, %v, %d, %d", tt.name, size, dur, st.stream.SampleRate, st.stream.Channels, tt.size, tt.dur, tt.rate, tt.channel)
		}
	}
}

// tsSynth builds a transport stream with one H.264-typed stream at 25 fps:
// the PAT, the PMT, then one PES per frame (frame i of size(i) bytes of
// filler) with PTS from pts0, and returns the file and its packets.
func tsSynth(pts0 int64, frames int, size func(i int) int) ([]byte, []Packet) {
	const pmtPID, pid = 0x1000, 0x100
	var b []byte
	cc := map[int]byte{}
	packet := func(pid int, pusi bool, p []byte) []byte {
		h := []byte{tsSync, byte(pid>>8) & 0x1f, byte(pid), 0x10 | cc[pid]&0xf}
		cc[pid]++
		if pusi {
			h[1] |= 0x40
		}
		if n := 184 - len(p); n > 0 { // stuff with an adaptation field
			h[3] |= 0x20
			af := make([]byte, n)
			af[0] = byte(n - 1)
			if n > 1 {
				af[1] = 0
				for i := 2; i < n; i++ {
					af[i] = 0xff
				}
			}
			h = append(h, af...)
		}
		return append(b, append(h, p...)...)
	}
	section := func(s []byte) []byte {
		crc := tsCRC(s)
		s = binary.BigEndian.AppendUint32(s, crc)
		return append([]byte{0}, s...) // pointer_field
	}
	b = packet(0, true, section([]byte{0x00, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xe0 | pmtPID>>8, pmtPID & 0xff}))
	b = packet(pmtPID, true, section([]byte{0x02, 0xb0, 18, 0, 1, 0xc1, 0, 0, 0xe0 | pid>>8, pid & 0xff, 0xf0, 0,
		0x1b, 0xe0 | pid>>8, pid & 0xff, 0xf0, 0}))
	var pk []Packet
	for i := range frames {
		pts := (pts0 + int64(i)*tsClock/25) & (tsWrap - 1)
		pes := []byte{0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5,
			byte(0x21 | pts>>29&0x0e), byte(pts >> 22), byte(pts>>14 | 1), byte(pts >> 7), byte(pts<<1 | 1)}
		pes = append(pes, bytes.Repeat([]byte{0xaa}, size(i))...)
		for first := true; len(pes) > 0; first = false {
			n := min(len(pes), 184)
			b = packet(pid, first, pes[:n])
			pes = pes[n:]
		}
		pk = append(pk, Packet{Time: float64(i) / 25, Bytes: int64(size(i))})
	}
	return b, pk
}

// mpegBudget is one sampled probe of a generated file: its byte budget (0
// the default 16 MiB) and the highest peak it may report, as a multiple
// of the exact peak.
type mpegBudget struct {
	maxBytes int64
	maxRatio float64
}

// checkMPEGSampled probes the file at path whole (a budget above its
// size: every PES counted, method exact, itself checked against ffprobe's
// packets) and under each budget, which samples it. A sampled peak must
// hold the rule for index peaks on the safe side: at least 90 % of the
// exact peak (pacing below the peak stalls playback), and at most
// maxRatio times it. What mpegPeak guarantees is weaker than the ratios
// these files are held to: a sample spanning a window gives at most the
// exact peak, one spanning s seconds less than a window W at most W/s
// times it (s >= W/16), and a burst between samples goes unseen.
func checkMPEGSampled(t *testing.T, path string, budgets []mpegBudget) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	exact, err := Probe(context.Background(), f, size, path, Options{MaxBytes: 2*size + 1<<20})
	if err != nil || exact.PeakMethod != Exact {
		t.Fatalf("whole: %v %+v", err, exact)
	}
	if o, ok := oracle(t, path, 4); !ok || !within(exact.BitratePeak, o.Peak, 0.05) {
		t.Errorf("exact peak %d, ffprobe %d", exact.BitratePeak, o.Peak)
	}
	t.Logf("%s: %d bytes, %.1f s, average %d bit/s, exact peak %d bit/s", filepath.Base(path), size, exact.Duration, exact.BitrateAvg, exact.BitratePeak)
	for _, b := range budgets {
		c := &readCounter{r: f}
		rep, err := Probe(context.Background(), c, size, path, Options{MaxBytes: b.maxBytes})
		if err != nil {
			t.Errorf("budget %d: %v", b.maxBytes, err)
			continue
		}
		ratio := float64(rep.BitratePeak) / float64(exact.BitratePeak)
		t.Logf("budget %8d: read %8d, peak %8d (%s), ratio %.3f, average %d, %.2f s",
			b.maxBytes, c.n, rep.BitratePeak, rep.PeakMethod, ratio, rep.BitrateAvg, rep.Duration)
		if rep.PeakMethod != Index || ratio < 0.9 || ratio > b.maxRatio {
			t.Errorf("budget %d: peak %d (%s), %.3f of the exact %d; want index, 0.9 to %.2f",
				b.maxBytes, rep.BitratePeak, rep.PeakMethod, ratio, exact.BitratePeak, b.maxRatio)
		}
		if math.Abs(rep.Duration-exact.Duration) > 0.1 || !within(rep.BitrateAvg, exact.BitrateAvg, 0.1) {
			t.Errorf("budget %d: %.3f s at %d bit/s; whole %.3f s at %d", b.maxBytes, rep.Duration, rep.BitrateAvg, exact.Duration, exact.BitrateAvg)
		}
	}
}

// TestTSSampledLarge: transport streams made at test time, larger than
// the budgets, with a bitrate that varies strongly: 90 s of H.264 with
// B-frames whose picture is noise for 10 s of every 23 (about 5 times
// the bits of the still parts), with AAC; and 120 s of AAC alone.
func TestTSSampledLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 90 s of video")
	}
	t.Parallel()
	ffmpeg := testenv.NeedTool(t, "ffmpeg")
	dir := t.TempDir()
	video := filepath.Join(dir, "varying.ts")
	runTool(t, ffmpeg, "-hide_banner", "-loglevel", "error", "-threads", "2",
		"-f", "lavfi", "-i", "testsrc=s=192x144:r=25:d=90", "-f", "lavfi", "-i", "sine=f=440:d=90:sample_rate=48000",
		"-vf", `noise=alls=40:allf=t:all_seed=5:enable=between(mod(t\,23)\,13\,23)`,
		"-c:v", "libx264", "-preset", "ultrafast", "-x264-params", "bframes=3:keyint=50", "-crf", "24",
		"-c:a", "aac", "-b:a", "96k", "-f", "mpegts", video)
	checkMPEGSampled(t, video, []mpegBudget{
		{512 << 10, 2}, {1 << 20, 2}, {2 << 20, 2}, {4 << 20, 1.2}, {0, 1.2},
	})
	audio := filepath.Join(dir, "audio.ts")
	runTool(t, ffmpeg, "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "sine=f=440:d=120:sample_rate=48000", "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", audio)
	checkMPEGSampled(t, audio, []mpegBudget{{256 << 10, 1.2}, {1 << 20, 1.2}})
}
