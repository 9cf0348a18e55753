#!/bin/sh
# Regenerates the MP3, WAV and AIFF fixtures of internal/probe (testdata/mp3,
# testdata/riff) with Debian's ffmpeg and lame, plus a small Go program (run
# from a temporary directory) for the two files no encoder writes: an MP3
# with a Fraunhofer VBRI header and one with an ID3v2.4 multi-valued artist.
#
#   cd internal/probe/testdata && sh make-mp3-riff.sh
#
# The parsers' fuzz targets, each run for a minute (from the module root;
# a short -fuzzminimizetime keeps the fuzzer from spending its minute
# minimising one input):
#
#   for f in FuzzMP3 FuzzID3 FuzzWAV FuzzAIFF; do
#     go test -run='^$' -fuzz="^$f\$" -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
#   done
#
# Everything is mono, low rate and a few seconds long, so the files stay
# small enough to commit. The source is 3 s of a 440 Hz sine then 3 s of
# pink noise, so VBR encodes really vary their bitrate (the peak differs
# from the average).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ff="ffmpeg -hide_banner -loglevel error -y"

$ff -f lavfi -i "sine=f=440:d=3" -f lavfi -i "anoisesrc=d=3:c=pink:a=0.5:seed=42" \
	-filter_complex "[0][1]concat=n=2:v=0:a=1,aresample=44100,pan=mono|c0=c0" \
	-c:a pcm_s16le "$tmp/src.wav"
# A 16x16 PNG for the APIC frame.
$ff -f lavfi -i "color=c=red:s=16x16:d=1" -frames:v 1 "$tmp/cover.png"

# CBR 128k (lame writes an "Info" frame) with ID3v2.3 tags, an APIC front
# cover and an ID3v1 tag at the end.
lame --quiet -b 128 -m m --add-id3v2 --tt "Sine and Noise" --ta "Test Artist" \
	--tl "Test Album" --ty 2021 --tn 3/12 --tg Rock --ti "$tmp/cover.png" \
	"$tmp/src.wav" mp3/cbr128-id3v23.mp3
# VBR with a Xing header and LAME tag (encoder delay and padding).
lame --quiet -V 6 -m m "$tmp/src.wav" mp3/vbr-xing.mp3
# VBR at 22.05 kHz (MPEG-2, 576 samples a frame) with a Xing header and
# LAME tag: the encoder delay and padding come to 1,512 samples, 69 ms,
# which the duration must leave out (TestOracle's 50 ms would notice).
lame --quiet -V 6 -m m --resample 22.05 "$tmp/src.wav" mp3/vbr-xing-22k.mp3
# VBR without Xing (-t): only a frame scan gives duration and peak.
lame --quiet -V 6 -m m -t "$tmp/src.wav" mp3/vbr-noxing.mp3

# The Go program: vbri writes a VBRI frame (version 1, 4 frames per TOC
# entry, 2-byte entries, scale 1) before the frames of vbr-noxing.mp3;
# id3v24 prepends an ID3v2.4 tag whose TPE1 holds "Alice\0Bob" and TCON
# "(17)" (Rock, by ID3v1 genre number) to the same frames.
cat > "$tmp/gen.go" <<'GO'
package main

import (
	"encoding/binary"
	"os"
)

var rates = [16]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}

func frameLen(h []byte) int {
	return 144000*rates[h[2]>>4]/44100 + int(h[2]>>1&1)
}

func main() {
	audio, err := os.ReadFile(os.Args[2])
	if err != nil {
		panic(err)
	}
	var out []byte
	switch os.Args[1] {
	case "vbri":
		var sizes []int
		for off := 0; off+4 <= len(audio); off += sizes[len(sizes)-1] {
			sizes = append(sizes, frameLen(audio[off:]))
		}
		const per = 4
		hdr := []byte{audio[0], audio[1], 9<<4 | audio[2]&0x0d, audio[3]} // 128 kbit/s, no padding
		f := make([]byte, frameLen(hdr))
		copy(f, hdr)
		v := f[36:]
		copy(v, "VBRI")
		binary.BigEndian.PutUint16(v[4:], 1)    // version
		binary.BigEndian.PutUint16(v[6:], 1105) // delay
		binary.BigEndian.PutUint16(v[8:], 75)   // quality
		binary.BigEndian.PutUint32(v[10:], uint32(len(f)+len(audio)))
		binary.BigEndian.PutUint32(v[14:], uint32(len(sizes)))
		n := (len(sizes) + per - 1) / per
		binary.BigEndian.PutUint16(v[18:], uint16(n))
		binary.BigEndian.PutUint16(v[20:], 1) // scale
		binary.BigEndian.PutUint16(v[22:], 2) // entry size
		binary.BigEndian.PutUint16(v[24:], per)
		for i := range n {
			sum := 0
			for _, s := range sizes[i*per : min(len(sizes), i*per+per)] {
				sum += s
			}
			binary.BigEndian.PutUint16(v[26+2*i:], uint16(sum))
		}
		out = append(f, audio...)
	case "id3v24":
		var body []byte
		frame := func(id, text string) {
			b := append([]byte{3}, text...) // UTF-8
			n := len(b)
			body = append(body, id...)
			body = append(body, byte(n>>21&0x7f), byte(n>>14&0x7f), byte(n>>7&0x7f), byte(n&0x7f), 0, 0)
			body = append(body, b...)
		}
		frame("TIT2", "Two Artists")
		frame("TPE1", "Alice\x00Bob")
		frame("TALB", "Duets")
		frame("TPE2", "Various Artists")
		frame("TRCK", "7")
		frame("TPOS", "2/2")
		frame("TDRC", "2019-04-01")
		frame("TCON", "(17)")
		body = append(body, make([]byte, 64)...) // padding
		n := len(body)
		out = append([]byte{'I', 'D', '3', 4, 0, 0, byte(n >> 21 & 0x7f), byte(n >> 14 & 0x7f), byte(n >> 7 & 0x7f), byte(n & 0x7f)}, body...)
		out = append(out, audio...)
	}
	if err := os.WriteFile(os.Args[3], out, 0o644); err != nil {
		panic(err)
	}
}
GO
(cd "$tmp" && GOFLAGS=-mod=mod go run gen.go vbri "$OLDPWD/mp3/vbr-noxing.mp3" "$OLDPWD/mp3/vbri.mp3")
# ffprobe (FFmpeg 5.1) shows only the first value of a multi-valued frame
# ("Alice"): TestOracle compares what it shows, TestMP3 every value.
(cd "$tmp" && GOFLAGS=-mod=mod go run gen.go id3v24 "$OLDPWD/mp3/vbr-noxing.mp3" "$OLDPWD/mp3/id3v24-multi.mp3")

# Broken files: the first 1000 bytes of an MP3, an empty file, random bytes
# (fixed, so the fixture does not change on every run).
head -c 1000 mp3/cbr128-id3v23.mp3 > mp3/truncated.mp3
: > mp3/empty.mp3
$ff -f lavfi -i "anoisesrc=d=1:c=white:seed=7" -t 0.05 -f s16le - | head -c 4096 > mp3/random.mp3

# WAV: 16-bit 8 kHz mono with LIST/INFO (INAM, IART, IPRD, ICRD, IGNR, ITRK).
$ff -i "$tmp/src.wav" -t 3 -ar 8000 -c:a pcm_s16le -bitexact \
	-metadata title="Wave Title" -metadata artist="Wave Artist" -metadata album="Wave Album" \
	-metadata date=2020 -metadata genre=Ambient -metadata track=4 riff/pcm16-info.wav
# AIFF: 16-bit 8 kHz mono with NAME and an ID3 chunk.
$ff -i "$tmp/src.wav" -t 3 -ar 8000 -c:a pcm_s16be -write_id3v2 1 -id3v2_version 3 \
	-metadata title="Aiff Title" -metadata artist="Aiff Artist" -metadata album="Aiff Album" \
	-metadata date=2018 riff/pcm16-id3.aiff
