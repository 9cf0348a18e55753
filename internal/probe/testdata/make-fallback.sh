#!/bin/sh
# Regenerates the ASF, FLV and MPEG program stream fixtures of
# internal/probe (testdata/asf, testdata/flv, testdata/mpegps) with
# Debian's ffmpeg: 5 s of 64x64 video at 10 fps and mono audio at 22.05 kHz.
#
#   cd internal/probe/testdata && sh make-fallback.sh
#
# The fuzz targets, for a minute each (from the module root):
#
#   go test -run='^$' -fuzz='^FuzzASF$' -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
#   go test -run='^$' -fuzz='^FuzzFLV$' -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
#   go test -run='^$' -fuzz='^FuzzMPEGPS$' -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
set -eu
cd "$(dirname "$0")"
ff="ffmpeg -hide_banner -loglevel error -y -fflags +bitexact -flags +bitexact"
vsrc="-f lavfi -i testsrc=s=64x64:r=10:d=5"
vsrc25="-f lavfi -i testsrc=s=64x64:r=25:d=5"
asrc="-f lavfi -i sine=f=440:d=5:sample_rate=22050"

# WMA (WMA v2, 32 kbit/s) with tags: ffmpeg writes title and artist to the
# Content Description Object and the rest to the Extended Content
# Description Object (WM/AlbumTitle, WM/AlbumArtist, WM/TrackNumber, "date",
# WM/Genre).
$ff $asrc -c:a wmav2 -b:a 32k -ac 1 \
	-metadata title="Wma Title" -metadata artist="Wma Artist" -metadata album="Wma Album" \
	-metadata album_artist="Wma Album Artist" -metadata track=3 -metadata date=2019 \
	-metadata genre=Jazz asf/wmav2-tags.wma
# WMV (WMV 8 video at 50 kbit/s, WMA v2 audio).
$ff $vsrc $asrc -c:v wmv2 -b:v 50k -c:a wmav2 -b:a 32k -ac 1 asf/wmv2-wmav2.wmv

# FLV: Sorenson H.263 video with MP3 audio, and H.264 with AAC.
$ff $vsrc $asrc -c:v flv -b:v 50k -c:a libmp3lame -b:a 32k -ac 1 \
	-metadata title="Flv Title" -metadata artist="Flv Artist" flv/flv1-mp3.flv
$ff $vsrc $asrc -c:v libx264 -preset veryfast -b:v 50k -c:a aac -b:a 32k -ac 1 flv/h264-aac.flv

# MPEG program streams (MPEG-1/2 video allows no 10 fps: 25 fps here): MPEG-1 packs (ffmpeg's mpeg muxer) with MPEG-1
# video and MP2, and MPEG-2 packs (the vob muxer) with MPEG-2 video and MP2.
$ff $vsrc25 $asrc -c:v mpeg1video -b:v 100k -c:a mp2 -b:a 64k -ac 1 -f mpeg mpegps/mpeg1-mp2.mpg
$ff $vsrc25 $asrc -c:v mpeg2video -b:v 100k -c:a mp2 -b:a 64k -ac 1 -f vob mpegps/mpeg2-mp2.mpg
# A DVD-style VOB: MPEG-2 video and AC-3 audio in private stream 1.
$ff $vsrc25 $asrc -c:v mpeg2video -b:v 100k -c:a ac3 -b:a 64k -ar 48000 -ac 1 -f vob mpegps/mpeg2-ac3.vob
