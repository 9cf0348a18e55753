#!/bin/sh
# Regenerates the AVI fixtures of internal/probe (testdata/avi) with
# Debian's ffmpeg: 6 s of 64x64 video at 10 fps (MPEG-4 Part 2, 50 kbit/s)
# with mono audio (MP3 at 32 kbit/s, or 16-bit PCM), and one H.264/AAC file.
#
#   cd internal/probe/testdata && sh make-avi.sh
#
# The fuzz target, for a minute (from the module root):
#
#   go test -run='^$' -fuzz=FuzzAVI -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
set -eu
cd "$(dirname "$0")"
ff="ffmpeg -hide_banner -loglevel error -y -bitexact"
src="-f lavfi -i testsrc=s=64x64:r=10:d=6 -f lavfi -i sine=f=440:d=6:sample_rate=22050"
v="-c:v mpeg4 -b:v 50k"

# MPEG-4 video and MP3 audio, no tags.
$ff $src $v -c:a libmp3lame -b:a 32k -ac 1 avi/mpeg4-mp3.avi
# The same with LIST/INFO tags (INAM, IART).
$ff $src $v -c:a libmp3lame -b:a 32k -ac 1 \
	-metadata title="Avi Title" -metadata artist="Avi Artist" avi/mpeg4-mp3-tags.avi
# H.264 video and AAC audio: the AAC encoder's priming makes ffmpeg write
# empty audio chunks, which hold no time.
$ff $src -c:v libx264 -preset veryfast -b:v 50k -c:a aac -b:a 32k -ac 1 avi/h264-aac.avi
# MPEG-4 video and 16-bit PCM audio at 8 kHz.
$ff $src $v -c:a pcm_s16le -ar 8000 -ac 1 avi/mpeg4-pcm.avi
