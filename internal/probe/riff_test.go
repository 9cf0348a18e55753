package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRIFF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want Report
	}{
		{"testdata/riff/pcm16-info.wav", Report{
			Container: "wav", Duration: 3, BitrateAvg: 128000, BitratePeak: 128000, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "audio", Codec: "pcm_s16le", SampleRate: 8000, Channels: 1}},
			Tags: Tags{Title: "Wave Title", Artists: []string{"Wave Artist"}, Album: "Wave Album",
				Track: 4, Year: 2020, Genres: []string{"Ambient"}},
		}},
		{"testdata/riff/pcm16-id3.aiff", Report{
			Container: "aiff", Duration: 3, BitrateAvg: 128000, BitratePeak: 128000, PeakWindow: 4, PeakMethod: Exact,
			Streams: []Stream{{Type: "audio", Codec: "pcm_s16be", SampleRate: 8000, Channels: 1}},
			Tags:    Tags{Title: "Aiff Title", Artists: []string{"Aiff Artist"}, Album: "Aiff Album", Year: 2018},
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
			if read > 4<<10 {
				t.Errorf("read %d bytes: the samples were read", read)
			}
		})
	}
}

// chunk builds a RIFF (little-endian) or IFF (big-endian) chunk, padded
// to an even size.
func chunk(order binary.AppendByteOrder, id string, size uint32, body []byte) []byte {
	b := order.AppendUint32([]byte(id), size)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func wavFmt(tag, channels uint16, rate uint32, bits uint16) []byte {
	align := channels * bits / 8
	b := binary.LittleEndian.AppendUint16(nil, tag)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(align))
	b = binary.LittleEndian.AppendUint16(b, align)
	return binary.LittleEndian.AppendUint16(b, bits)
}

// TestRIFFBuilt covers variants no fixture has: RF64, WAVE_FORMAT_EXTENSIBLE
// floats, an id3 chunk, a data size larger than the file, AIFF-C.
func TestRIFFBuilt(t *testing.T) {
	t.Parallel()
	le, be := binary.LittleEndian, binary.BigEndian
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	ext := cat(wavFmt(0xfffe, 2, 48000, 32), []byte{22, 0, 32, 0, 3, 0, 0, 0, 3, 0}, make([]byte, 14))
	id3 := cat([]byte("ID3\x03\x00\x00"), syncsafeBytes(16), []byte("TIT2\x00\x00\x00\x06\x00\x00\x00Id3 T"))
	ds64 := cat(le.AppendUint64(nil, 0), le.AppendUint64(nil, 96000), make([]byte, 12))
	comm := func(frames uint32, bits uint16, extra string) []byte {
		b := be.AppendUint16(nil, 1)
		b = be.AppendUint32(b, frames)
		b = be.AppendUint16(b, bits)
		b = append(b, 0x40, 0x0e, 0xac, 0x44, 0, 0, 0, 0, 0, 0) // 44100 as an 80-bit float
		return append(b, extra...)
	}
	tests := []struct {
		name      string
		file      []byte
		duration  float64
		avg       int64
		codec     string
		container string
		title     string
	}{
		{"extensible float with id3", cat([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk(le, "fmt ", 40, ext),
			chunk(le, "id3 ", uint32(len(id3)), id3), chunk(le, "data", 3840, make([]byte, 3840))),
			0.01, 3072000, "pcm_f32le", "wav", "Id3 T"},
		{"RF64", cat([]byte("RF64\xff\xff\xff\xffWAVE"), chunk(le, "ds64", 28, ds64), chunk(le, "fmt ", 16, wavFmt(1, 1, 8000, 8)),
			chunk(le, "data", 0xffffffff, nil), make([]byte, 96000)),
			12, 64000, "pcm_u8", "wav", ""},
		{"data size beyond the end", cat([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk(le, "fmt ", 16, wavFmt(1, 1, 8000, 16)),
			chunk(le, "data", 1<<30, nil), make([]byte, 16000)),
			1, 128000, "pcm_s16le", "wav", ""},
		{"AIFF-C sowt with NAME", cat([]byte("FORM\x00\x00\x00\x00AIFC"), chunk(be, "COMM", 24, comm(4410, 16, "sowt\x00\x00")),
			chunk(be, "NAME", 5, []byte("Named")), chunk(be, "SSND", 8+8820, make([]byte, 8+8820))),
			0.1, 705600, "pcm_s16le", "aiff", "Named"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Probe(context.Background(), bytes.NewReader(tt.file), int64(len(tt.file)), "", Options{})
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			got := []any{rep.Container, rep.Streams[0].Codec, rep.Duration, rep.BitrateAvg, rep.Tags.Title}
			want := []any{tt.container, tt.codec, tt.duration, tt.avg, tt.title}
			if diff := cmp.Diff(want, got, durationApprox); diff != "" {
				t.Errorf("container, codec, duration, average, title (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRIFFBroken(t *testing.T) {
	t.Parallel()
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"wav without fmt", append([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk(le, "data", 4, make([]byte, 4))...), ErrCorrupt},
		{"wav fmt cut short", append([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk(le, "fmt ", 16, make([]byte, 6))[:14]...), io.ErrUnexpectedEOF},
		{"wav without data", append([]byte("RIFF\x00\x00\x00\x00WAVE"), chunk(le, "fmt ", 16, wavFmt(1, 1, 8000, 16))...), ErrCorrupt},
		{"aiff with a NaN rate", append([]byte("FORM\x00\x00\x00\x00AIFF"), chunk(be, "COMM", 18,
			[]byte{0, 1, 0, 0, 0, 1, 0, 16, 0x7f, 0xff, 0xc0, 0, 0, 0, 0, 0, 0, 0})...), ErrCorrupt},
		{"aiff without COMM", append([]byte("FORM\x00\x00\x00\x00AIFF"), chunk(be, "SSND", 8, make([]byte, 8))...), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Probe(context.Background(), bytes.NewReader(tt.file), int64(len(tt.file)), "", Options{})
			if !errors.Is(err, tt.want) {
				t.Errorf("Probe: %v, want %v", err, tt.want)
			}
		})
	}
}
