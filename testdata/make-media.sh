#!/usr/bin/env bash
# Regenerates the small media fixtures under testdata/media with ffmpeg.
# The files are committed; run this only to change them.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf media
mkdir -p "media/Music/Sine Band/First Album" media/Music/Lossless media/Videos
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
# 40 s so that players can seek to 30 s.
ff -f lavfi -i "sine=frequency=440:duration=40" -ac 1 -ar 22050 -c:a libmp3lame -b:a 32k \
   -metadata title="Sine Ä" -metadata artist="Sine Band" -metadata album="First Album" -metadata track=1 \
   "media/Music/Sine Band/First Album/01 Sine Ä.mp3"
ff -f lavfi -i "sine=frequency=660:duration=10" -ac 1 -ar 22050 -c:a libvorbis -q:a 0 \
   -metadata title="Tone" "media/Music/Sine Band/First Album/02 Tone.ogg"
ff -f lavfi -i "sine=frequency=330:duration=5" -ac 1 -ar 8000 -sample_fmt s16 -c:a flac \
   media/Music/Lossless/tone.flac
ff -f lavfi -i "testsrc=size=64x64:rate=10:duration=40" -f lavfi -i "sine=frequency=500:duration=40" \
   -c:v libx264 -preset veryfast -b:v 20k -pix_fmt yuv420p -c:a aac -b:a 24k -ac 1 -ar 22050 \
   -movflags +faststart -shortest media/Videos/clip.mp4
ff -f lavfi -i "testsrc=size=64x64:rate=10:duration=10" -f lavfi -i "sine=frequency=500:duration=10" \
   -c:v libvpx -b:v 20k -c:a libopus -b:a 16k -ac 1 -shortest media/Videos/clip.webm
printf 'not media\n' > media/Music/notes.txt
du -sh media
