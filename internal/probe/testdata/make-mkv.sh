#!/bin/sh
# make-mkv.sh regenerates the Matroska/WebM fixtures under testdata/mkv with
# Debian's ffmpeg (libx264, libvpx, libopus) and mkvtoolnix (apt-get install
# ffmpeg mkvtoolnix). The fixtures are committed; encoders change between
# versions, so regenerating them may change the exact figures the tests
# expect.
#
# The sources last 6 s (not less: the peak window is 4 s, and a file shorter
# than the window has no peak but its average): 64x64 video at 10 fps with a
# burst of noise at 3-4 s, and 16 kHz mono audio, a tone with noise at 3-4 s,
# so the 4 s peak differs clearly from the average.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ff() { ffmpeg -v error -y "$@"; }
ff -f lavfi -i "testsrc2=s=64x64:r=10:d=6,noise=alls=60:allf=t:enable='between(t,3,4)'" \
	-c:v rawvideo -pix_fmt yuv420p "$tmp/video.nut"
ff -f lavfi -i "aevalsrc=if(between(t\,3\,4)\,0.5*(random(0)*2-1)\,0.3*sin(2*PI*440*t)):s=16000:d=6" \
	-ac 1 -c:a pcm_s16le "$tmp/audio.wav"
ff -f lavfi -i "color=c=red:s=8x8" -frames:v 1 "$tmp/cover.png"
cp "$tmp/cover.png" "$tmp/cover2.png"

x264='-c:v libx264 -preset veryfast -b:v 40k -g 10 -x264-params keyint=10'
vp9='-c:v libvpx-vp9 -b:v 40k -g 10 -deadline realtime -cpu-used 8'
vp8='-c:v libvpx -b:v 40k -g 10 -deadline realtime -cpu-used 8'
opus='-c:a libopus -b:a 24k'
bitexact='-fflags +bitexact -flags:v +bitexact -flags:a +bitexact'

# H.264 + AAC with tags and an attached cover (Cues at the end, ffmpeg's
# default for a seekable output).
# shellcheck disable=SC2086
ff -i "$tmp/video.nut" -i "$tmp/audio.wav" $x264 -c:a aac -b:a 24k $bitexact \
	-metadata title=Tone -metadata artist=Alice -metadata album=Fixtures \
	-metadata date=2021 -metadata genre=Test \
	-attach "$tmp/cover.png" -metadata:s:t mimetype=image/png \
	mkv/h264-aac-tags-cover.mkv

# WebM: VP9 + Opus.
# shellcheck disable=SC2086
ff -i "$tmp/video.nut" -i "$tmp/audio.wav" $vp9 $opus $bitexact -metadata title=Web \
	mkv/vp9-opus.webm

# Audio only: FLAC in Matroska.
# shellcheck disable=SC2086
ff -i "$tmp/audio.wav" -c:a flac $bitexact -metadata title=Lossless -metadata artist=Carol \
	mkv/flac.mka

# Live-written WebM: VP8 + Opus to a pipe, so the muxer cannot seek back:
# the Segment and Clusters have unknown sizes, and there are no Cues and no
# Duration.
# shellcheck disable=SC2086
ff -i "$tmp/video.nut" -i "$tmp/audio.wav" $vp8 $opus $bitexact -live 1 -f webm - >mkv/live-vp8-opus.webm

# Matroska without Cues but with every size known: mkvmerge --no-cues.
# shellcheck disable=SC2086
ff -i "$tmp/video.nut" -i "$tmp/audio.wav" $x264 $opus $bitexact "$tmp/src.mkv"
mkvmerge -q --deterministic 1 --no-cues --no-date --disable-track-statistics-tags -o mkv/nocues-h264-opus.mkv "$tmp/src.mkv"

# Opus in Matroska Audio tagged the Matroska way (mkvmerge --global-tags):
# the album (TargetTypeValue 50) and the track (30) each with a TITLE and
# an ARTIST, PART_NUMBER and DATE_RELEASED, and a cover attachment named
# cover.png.
cat >"$tmp/tags.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Tags>
  <Tag>
    <Targets><TargetTypeValue>50</TargetTypeValue></Targets>
    <Simple><Name>TITLE</Name><String>Fixtures</String></Simple>
    <Simple><Name>ARTIST</Name><String>Various</String></Simple>
    <Simple><Name>DATE_RELEASED</Name><String>2021-05-04</String></Simple>
    <Simple><Name>GENRE</Name><String>Test</String></Simple>
  </Tag>
  <Tag>
    <Targets><TargetTypeValue>30</TargetTypeValue></Targets>
    <Simple><Name>TITLE</Name><String>Tone</String></Simple>
    <Simple><Name>ARTIST</Name><String>Alice</String></Simple>
    <Simple><Name>PART_NUMBER</Name><String>3</String></Simple>
  </Tag>
</Tags>
XML
# shellcheck disable=SC2086
ff -i "$tmp/audio.wav" $opus $bitexact "$tmp/src.opus"
mkvmerge -q --deterministic 1 --no-date --disable-track-statistics-tags --global-tags "$tmp/tags.xml" \
	--attachment-mime-type image/png --attachment-name cover.png --attach-file "$tmp/cover.png" \
	-o mkv/opus-album-tags.mka "$tmp/src.opus"
