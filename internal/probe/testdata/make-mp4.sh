#!/bin/sh
# make-mp4.sh regenerates the MP4/MOV fixtures under testdata/mp4 with
# Debian's ffmpeg (apt-get install ffmpeg; libx264 and the native aac, alac
# and mpeg4 encoders). The fixtures are committed; encoders change between
# versions, so regenerating them may change the exact figures the tests
# expect.
#
#   cd internal/probe/testdata && sh make-mp4.sh
#
# The fuzz target, run for a minute (from the module root):
#
#   go test -run='^$' -fuzz='^FuzzMP4$' -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
#
# The sources are 4 s long: 2 s of a 440 Hz tone then 2 s of noise (mono,
# 22,050 Hz), and a 64x64 test pattern at 10 frames/s whose second half is
# noise too, so the 4 s peak differs from the average.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ff="ffmpeg -hide_banner -loglevel error -y"

$ff -f lavfi -i "aevalsrc=if(lt(t\,2)\,0.3*sin(2*PI*440*t)\,0.5*(random(0)*2-1)):s=22050:d=4" \
	-ac 1 -c:a pcm_s16le "$tmp/src.wav"
$ff -f lavfi -i "testsrc2=s=64x64:r=10:d=4" -vf "noise=alls=60:allf=t:enable='gte(t,2)'" \
	-c:v ffv1 "$tmp/src.mkv"
$ff -f lavfi -i "color=c=red:s=8x8" -frames:v 1 "$tmp/cover.png"

x264="-c:v libx264 -preset veryfast -b:v 40k -pix_fmt yuv420p -x264-params bframes=0"
aac="-c:a aac -b:a 24k"
common="-fflags +bitexact -flags:v +bitexact -flags:a +bitexact"

# AAC in M4A (the ipod muxer) with iTunes tags and a PNG front cover.
# shellcheck disable=SC2086
$ff -i "$tmp/src.wav" -i "$tmp/cover.png" -map 0 -map 1 $aac -c:v png -disposition:v attached_pic \
	-metadata title=Tone -metadata artist=Alice -metadata album=Fixtures -metadata album_artist=Various \
	-metadata track=3/9 -metadata disc=1/2 -metadata date=2021 -metadata genre=Test $common \
	mp4/aac-tagged-cover.m4a

# H.264 + AAC, moov first (faststart) and moov last (ffmpeg's default).
# shellcheck disable=SC2086
$ff -i "$tmp/src.mkv" -i "$tmp/src.wav" -map 0 -map 1 $x264 $aac -metadata title=Faststart \
	-movflags +faststart $common mp4/h264-aac-faststart.mp4
# shellcheck disable=SC2086
$ff -i "$tmp/src.mkv" -i "$tmp/src.wav" -map 0 -map 1 $x264 $aac $common mp4/h264-aac-moovend.mp4

# H.265 (hvc1) with B-frames: composition offsets (ctts) and an edit list
# that starts the video after the reordering delay.
# shellcheck disable=SC2086
$ff -i "$tmp/src.mkv" -i "$tmp/src.wav" -map 0 -map 1 -c:v libx265 -preset veryfast -b:v 40k -pix_fmt yuv420p \
	-x265-params log-level=none:bframes=3:pools=1:frame-threads=1 -tag:v hvc1 $aac $common mp4/hevc-bframes-aac.mp4

# Fragmented MP4: an empty moov, then a moof+mdat per keyframe (one every
# second).
# shellcheck disable=SC2086
$ff -i "$tmp/src.mkv" -i "$tmp/src.wav" -map 0 -map 1 $x264 -g 10 $aac \
	-movflags frag_keyframe+empty_moov $common mp4/h264-aac-fragmented.mp4

# ALAC in M4A.
# shellcheck disable=SC2086
$ff -i "$tmp/src.wav" -c:a alac -metadata title=Lossless $common mp4/alac.m4a

# QuickTime MOV: MPEG-4 part 2 video and AAC; the tags are QuickTime user
# data text (©nam, ©ART, ©day), not iTunes items.
# shellcheck disable=SC2086
$ff -i "$tmp/src.mkv" -i "$tmp/src.wav" -map 0 -map 1 -c:v mpeg4 -b:v 40k $aac \
	-metadata title=Movie -metadata artist=Dave -metadata date=1999 $common mp4/mpeg4-aac.mov

# 3GP (brand 3gp4): H.263 at QCIF and AAC, as phones wrote them. ffmpeg's
# 3gp muxer only takes H.263 at the standard sizes.
# shellcheck disable=SC2086
$ff -i "$tmp/src.mkv" -i "$tmp/src.wav" -map 0 -map 1 -vf scale=176:144 -c:v h263 -b:v 40k $aac \
	-metadata title=Phone -f 3gp $common mp4/h263-aac.3gp
