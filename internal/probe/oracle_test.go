package probe

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// oracleReport is what ffprobe says about a file, reduced to what a probe
// reports.
type oracleReport struct {
	Duration   float64
	BitrateAvg int64
	Peak       int64
	Codecs     []string // audio and video streams, in order; cover art left out
	Tags       map[string]string
	Packets    int
}

type ffprobeOut struct {
	Streams []struct {
		Index       int               `json:"index"`
		CodecName   string            `json:"codec_name"`
		CodecType   string            `json:"codec_type"`
		SampleRate  string            `json:"sample_rate"`
		Tags        map[string]string `json:"tags"`
		Disposition struct {
			AttachedPic int `json:"attached_pic"`
		} `json:"disposition"`
	} `json:"streams"`
	Packets []struct {
		StreamIndex  int    `json:"stream_index"`
		PtsTime      string `json:"pts_time"`
		DtsTime      string `json:"dts_time"`
		DurationTime string `json:"duration_time"`
		Size         string `json:"size"`
		SideData     []struct {
			Type           string `json:"side_data_type"`
			SkipSamples    int64  `json:"skip_samples"`
			DiscardPadding int64  `json:"discard_padding"`
		} `json:"side_data_list"`
	} `json:"packets"`
	Format struct {
		Tags map[string]string `json:"tags"`
	} `json:"format"`
}

// oracle runs ffprobe on path and computes, from its packet list, the
// duration (end of the last packet minus the start of the first, from 0
// for streams that start before 0 such as Opus with pre-skip), the average
// bitrate of the media data (packets only: tags and covers excluded) and
// the peak over window by Peak's definition.
//
// In a file with one media stream, the duration leaves out the samples
// the decoder drops, which ffprobe reports as "Skip Samples" side data:
// skip_samples at the start (an MP3's LAME encoder delay, AAC priming;
// not again when the stream already starts before 0 for them) and
// discard_padding at the end (LAME padding, Opus and Vorbis end trim).
// The packets span them: 1,105 samples of LAME delay are 25 ms at
// 44.1 kHz but 50 ms at 22.05 kHz. With video the video's packets bound
// the duration, so nothing is subtracted.
func oracle(t *testing.T, path string, window float64) (oracleReport, bool) {
	t.Helper()
	ffprobe := testenv.NeedTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-print_format", "json",
		"-show_format", "-show_streams", "-show_packets", path).Output()
	if err != nil {
		return oracleReport{}, false
	}
	var fo ffprobeOut
	if err := json.Unmarshal(out, &fo); err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	media := map[int]bool{}
	rates := map[int]float64{}
	var o oracleReport
	o.Tags = map[string]string{}
	for k, v := range fo.Format.Tags {
		o.Tags[strings.ToLower(k)] = v
	}
	for _, s := range fo.Streams {
		if (s.CodecType != "audio" && s.CodecType != "video") || s.Disposition.AttachedPic == 1 {
			continue
		}
		media[s.Index] = true
		if r, err := strconv.ParseFloat(s.SampleRate, 64); err == nil && r > 0 {
			rates[s.Index] = r
		}
		o.Codecs = append(o.Codecs, s.CodecName)
		for k, v := range s.Tags { // Ogg keeps its comments on the stream
			if _, ok := o.Tags[strings.ToLower(k)]; !ok {
				o.Tags[strings.ToLower(k)] = v
			}
		}
	}
	var packets []Packet
	start, end := math.Inf(1), math.Inf(-1)
	var total, skip, discard int64
	for _, p := range fo.Packets {
		if !media[p.StreamIndex] {
			continue
		}
		for _, sd := range p.SideData {
			if sd.Type == "Skip Samples" {
				skip += sd.SkipSamples
				discard += sd.DiscardPadding
			}
		}
		ts := p.PtsTime
		if ts == "" || ts == "N/A" {
			ts = p.DtsTime
		}
		pts, err1 := strconv.ParseFloat(ts, 64)
		dur, err2 := strconv.ParseFloat(p.DurationTime, 64)
		size, err3 := strconv.ParseInt(p.Size, 10, 64)
		if err1 != nil || err3 != nil {
			continue
		}
		if err2 != nil {
			dur = 0
		}
		start, end = min(start, pts), max(end, pts+dur)
		total += size
		packets = append(packets, Packet{Time: pts, Bytes: size})
	}
	if len(packets) == 0 {
		return oracleReport{}, false
	}
	o.Packets = len(packets)
	o.Duration = end - max(start, 0)
	if len(o.Codecs) == 1 && len(rates) == 1 {
		for _, rate := range rates {
			lead := max(0, float64(skip)/rate-max(0, -start))
			o.Duration -= lead + float64(discard)/rate
		}
	}
	if o.Duration > 0 {
		o.BitrateAvg = int64(float64(total) * 8 / o.Duration)
	}
	// Packets of several streams interleave nearly in time order; the
	// meter wants them sorted.
	sortPackets(packets)
	o.Peak = Peak(packets, window, o.Duration)
	return o, true
}

// TestOracle probes every fixture under testdata/<family>/ and compares
// the report with ffprobe's: duration within 0.5 % or 50 ms, average
// bitrate within 2 %, peak within 5 % when exact or nominal, within 20 %
// and never below 90 % of the oracle when approximated from an index,
// codecs equal, and the tags ffprobe shows present. Files ffprobe cannot
// read are the parsers' own tests' business.
func TestOracle(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range files {
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() || strings.HasSuffix(path, ".sh") {
			continue
		}
		n++
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			o, ok := oracle(t, path, 4)
			if !ok {
				t.Skipf("ffprobe finds no media packets in %s", path)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			rep, err := Probe(context.Background(), f, fi.Size(), path, Options{})
			if err != nil {
				t.Fatalf("Probe: %v (ffprobe reads %d packets)", err, o.Packets)
			}
			if d := math.Abs(rep.Duration - o.Duration); d > max(0.005*o.Duration, 0.05) {
				t.Errorf("duration %.4f s, ffprobe %.4f s", rep.Duration, o.Duration)
			}
			if !within(rep.BitrateAvg, o.BitrateAvg, 0.02) {
				t.Errorf("average bitrate %d, ffprobe %d", rep.BitrateAvg, o.BitrateAvg)
			}
			switch rep.PeakMethod {
			case Exact, Nominal:
				if !within(rep.BitratePeak, o.Peak, 0.05) {
					t.Errorf("peak (%s) %d, ffprobe %d", rep.PeakMethod, rep.BitratePeak, o.Peak)
				}
			case Index:
				if !within(rep.BitratePeak, o.Peak, 0.20) || float64(rep.BitratePeak) < 0.9*float64(o.Peak) {
					t.Errorf("peak (index) %d, ffprobe %d", rep.BitratePeak, o.Peak)
				}
			default:
				t.Errorf("peak method %q for a file ffprobe reads", rep.PeakMethod)
			}
			var codecs []string
			for _, s := range rep.Streams {
				codecs = append(codecs, s.Codec)
			}
			if strings.Join(codecs, ",") != strings.Join(o.Codecs, ",") {
				t.Errorf("codecs %v, ffprobe %v", codecs, o.Codecs)
			}
			checkTags(t, rep.Tags, o.Tags)
		})
	}
	if n == 0 {
		t.Skip("no fixtures yet")
	}
}

func within(got, want int64, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

// checkTags checks that every tag ffprobe shows has its value in ours.
func checkTags(t *testing.T, got Tags, want map[string]string) {
	t.Helper()
	str := func(key, ours string) {
		if v, ok := want[key]; ok && v != ours {
			t.Errorf("tag %s = %q, ffprobe %q", key, ours, v)
		}
	}
	// ffprobe joins the values of a multi-valued tag with ";" (Vorbis
	// comments), except where it shows only the first (FFmpeg 5.1 and an
	// ID3v2.4 frame's values, a Matroska tag's): the values it shows must
	// be ours, in order. The parsers' own tests check every value.
	list := func(key string, ours []string) {
		v, ok := want[key]
		if !ok {
			return
		}
		theirs := strings.Split(v, ";")
		if len(ours) < len(theirs) {
			t.Errorf("tag %s = %q, ffprobe %q", key, ours, v)
			return
		}
		for i, s := range theirs {
			if ours[i] != s {
				t.Errorf("tag %s value %d is %q, ffprobe %q", key, i, ours[i], v)
			}
		}
	}
	num := func(key string, ours int) {
		v, ok := want[key]
		if !ok {
			return
		}
		digits := strings.TrimLeft(v, " ")
		i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
		if i >= 0 {
			digits = digits[:i]
		}
		if n, err := strconv.Atoi(digits); err == nil && n != ours {
			t.Errorf("tag %s = %d, ffprobe %q", key, ours, v)
		}
	}
	str("title", got.Title)
	str("album", got.Album)
	list("artist", got.Artists)
	list("album_artist", got.AlbumArtists)
	list("genre", got.Genres)
	num("track", got.Track)
	num("disc", got.Disc)
	if _, ok := want["date"]; ok {
		num("date", got.Year)
	}
}
