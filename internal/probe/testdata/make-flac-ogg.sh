#!/bin/sh
# make-flac-ogg.sh regenerates the FLAC and Ogg fixtures under testdata/flac
# and testdata/ogg with Debian's ffmpeg, flac, opus-tools and vorbis-tools
# (apt-get install ffmpeg flac opus-tools vorbis-tools). The fixtures are
# committed; encoders change between versions, so regenerating them may
# change the exact figures the tests expect.
#
# The source is 6 s of 8 kHz mono: a 440 Hz tone with 1 s of noise at 3-4 s,
# so the 4 s peak differs clearly from the average.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ffmpeg -v error -f lavfi -i "aevalsrc=if(between(t\,3\,4)\,0.5*(random(0)*2-1)\,0.3*sin(2*PI*440*t)):s=8000:d=6" \
	-ac 1 -c:a pcm_s16le -fflags +bitexact "$tmp/src.wav"
ffmpeg -v error -f lavfi -i "color=c=red:s=8x8" -frames:v 1 "$tmp/cover.png"

tags='-T TITLE=Tone -T ARTIST=Alice -T ARTIST=Bob -T ALBUM=Fixtures -T ALBUMARTIST=Various -T TRACKNUMBER=3/9 -T DISCNUMBER=1/2 -T DATE=2021-05-04 -T GENRE=Test -T GENRE=Noise'

# FLAC with a seek point every second, Vorbis comments, a front cover and
# flac's default 8 KiB padding.
# shellcheck disable=SC2086
flac -s -f --no-utf8-convert -S 1s $tags --picture="3|image/png|Front||$tmp/cover.png" \
	-o flac/tagged-seektable-cover.flac "$tmp/src.wav"

# FLAC without a seek table, no padding, no tags beyond the title.
flac -s -f --no-seektable --no-padding -T TITLE=Plain -o flac/noseektable.flac "$tmp/src.wav"

# FLAC behind an ID3v2.3 tag (TIT2 "ID3 title" plus 100 bytes of padding:
# 120 bytes, syncsafe 0x78). ffprobe discards the ID3 tags of a FLAC file
# and keeps its Vorbis comments, and so does the probe.
flac -s -f --no-padding -T TITLE=Behind -T ARTIST=Carol -o "$tmp/id3.flac" "$tmp/src.wav"
{
	printf 'ID3\003\000\000\000\000\000\170'
	printf 'TIT2\000\000\000\012\000\000\000ID3 title'
	head -c 100 /dev/zero
	cat "$tmp/id3.flac"
} >flac/id3v2.flac

# Ogg Vorbis with tags (two ARTIST comments through -c).
oggenc -Q -q 0 --serial 1234 -t Tone -a Alice -c ARTIST=Bob -l Fixtures -c ALBUMARTIST=Various \
	-N 3/9 -c DISCNUMBER=1/2 -d 2021 -G Test -o ogg/vorbis.ogg "$tmp/src.wav"

# Ogg Opus: opusenc's pre-skip (312 samples at 48 kHz), tags and a cover
# (METADATA_BLOCK_PICTURE).
opusenc --quiet --serial 4321 --bitrate 16 --title Tone --artist Alice --artist Bob --album Fixtures \
	--comment ALBUMARTIST=Various --tracknumber 3/9 --comment DISCNUMBER=1/2 --date 2021 --genre Test \
	--picture "3||Front||$tmp/cover.png" "$tmp/src.wav" ogg/opus.opus

# FLAC in Ogg.
flac -s -f --ogg --serial-number=99 --no-padding -T TITLE=Wrapped -T ARTIST=Dave -o ogg/flac.oga "$tmp/src.wav"
