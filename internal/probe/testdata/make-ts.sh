#!/bin/sh
# Regenerates the MPEG-TS fixtures of internal/probe (testdata/ts) with
# Debian's ffmpeg: a few seconds of 320x240 video at 25 fps whose middle
# second and a half is noise (so the 4 s peak stands above the average),
# with audio, in each packet layout and stream type the parser maps.
#
#   cd internal/probe/testdata && sh make-ts.sh
#
# The fuzz target, for a minute (from the module root):
#
#   go test -run='^$' -fuzz='^FuzzTS$' -fuzztime=60s -fuzzminimizetime=5s ./internal/probe/
set -eu
cd "$(dirname "$0")"
ff="ffmpeg -hide_banner -loglevel error -y -fflags +bitexact -flags +bitexact -threads 1"
# The noise filter is seeded; x264 and x265 run single-threaded, so the
# output is the same byte for byte on every machine.
video="-f lavfi -i testsrc=s=320x240:r=25:d=7"
noisy="-vf noise=alls=40:allf=t:all_seed=7:enable=between(t\,2.5\,4)"
x264="-c:v libx264 -preset veryfast -x264-params threads=1 -b:v 150k -maxrate 400k -bufsize 400k"
tone="-f lavfi -i sine=f=440:d=7:sample_rate=48000"

# H.264 and AAC (stream types 0x1B, 0x0F), 188-byte packets.
$ff $video $tone $noisy $x264 -c:a aac -b:a 64k -ac 2 -f mpegts ts/h264-aac.ts
# MPEG-1 layer 2 audio alone (0x03), padded to a constant 160 kbit/s with
# null packets: the file's size says far more than its payload.
$ff -f lavfi -i sine=f=330:d=6:sample_rate=44100 -c:a mp2 -b:a 64k -ac 1 \
	-f mpegts -muxrate 160k ts/mp2-cbr.ts
# H.264 and AC-3 (0x81) in BDAV/M2TS: 192-byte packets, each after a
# 4-byte arrival time stamp.
$ff $video $tone $noisy $x264 -c:a ac3 -b:a 96k -ac 2 -f mpegts -mpegts_m2ts_mode 1 ts/h264-ac3.m2ts
# HEVC and E-AC-3 the DVB way (system B: stream type 0x06 with an
# enhanced AC-3 descriptor).
$ff $video $tone $noisy -c:v libx265 -preset veryfast -x265-params pools=none:frame-threads=1:vbv-maxrate=400:vbv-bufsize=400:log-level=error \
	-b:v 150k -c:a eac3 -b:a 96k -ac 2 -f mpegts -mpegts_flags system_b ts/hevc-eac3.ts
# A longer, smaller stream for the sampled probe (a budget below twice
# the file's size): 64x64 video at 10 fps with noise for 3 s of every 12,
# and MPEG-2 layer 2 audio at 16 kHz.
$ff -f lavfi -i testsrc=s=64x64:r=10:d=32 -f lavfi -i sine=f=220:d=32:sample_rate=16000 \
	-vf "noise=alls=50:allf=t:all_seed=3:enable=between(mod(t\,12)\,7\,10)" \
	-c:v libx264 -preset veryfast -x264-params threads=1 -b:v 20k -maxrate 50k -bufsize 50k \
	-c:a mp2 -b:a 24k -ac 1 -f mpegts ts/long-h264-mp2.ts
