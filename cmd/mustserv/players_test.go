package main

import (
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// Real players as clients. Each one must exit 0, and the access log must
// show that it fetched media bytes the way section 5 of the dependency
// research recorded (Range: bytes=0- first, open-ended ranges to seek).

// fixtures served by the player tests, as <library>/<path> and URL path.
var playerFixtures = []struct {
	name, file, url string
}{
	{"mp3", mp3Path, mp3URL},
	{"mp4", mp4Path, mp4URL},
}

func servedMedia(t *testing.T) *server {
	t.Helper()
	return startServer(t, filepath.Join(mediaDir, "Music"), filepath.Join(mediaDir, "Videos"))
}

// ffprobeDuration runs ffprobe on a file or URL and returns the duration in
// seconds.
func ffprobeDuration(t *testing.T, input string) float64 {
	t.Helper()
	out := runTool(t, exec.CommandContext(playerCtx(t), "ffprobe", "-v", "error",
		"-show_entries", "format=duration", "-of", "csv=p=0", input))
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe %s printed %q: %v", input, out, err)
	}
	return d
}

func TestFFprobeReadsDuration(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "ffprobe")
	s := servedMedia(t)
	for _, f := range playerFixtures {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			local := ffprobeDuration(t, filepath.Join(mediaDir, f.file))
			remote := ffprobeDuration(t, s.URL+f.url)
			if local < 39 || local > 41 {
				t.Fatalf("fixture %s lasts %.3fs, want about 40s", f.file, local)
			}
			if math.Abs(remote-local) > 0.05 {
				t.Errorf("duration over HTTP %.3fs, on disk %.3fs", remote, local)
			}
			s.Stderr.waitRequests(t, "ffprobe's request", func(l accessLine) bool {
				return l.Path == "/stream/"+f.file && l.Range == "bytes=0-" && l.Status == http.StatusPartialContent
			})
		})
	}
}

// makeBigMP4 encodes a 40 s MP4 large enough (about 14 MB) that ffmpeg seeks
// with a new Range request instead of reading forward through its buffer,
// as it does on the small fixture.
func makeBigMP4(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Big")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	runTool(t, exec.CommandContext(playerCtx(t), "ffmpeg", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "40",
		"-c:v", "mjpeg", "-q:v", "2", "-movflags", "+faststart", filepath.Join(dir, "big.mp4")))
	return dir
}

func TestFFmpegSeeksWithRange(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "ffmpeg")
	dir := makeBigMP4(t)
	s := startServer(t, dir)
	runTool(t, exec.CommandContext(playerCtx(t), "ffmpeg", "-nostdin", "-v", "error",
		"-ss", "30", "-i", s.URL+"/stream/Big/big.mp4", "-t", "1", "-f", "null", "-"))
	seeks := s.Stderr.waitRequests(t, "a request with Range: bytes=N- and N > 0", func(l accessLine) bool {
		return l.Path == "/stream/Big/big.mp4" && rangeStart(l.Range) > 0 && l.Status == http.StatusPartialContent
	})
	t.Logf("ffmpeg's seek: %+v", seeks[0])
}

func TestMPVPlaysFromTheMiddle(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "mpv")
	s := servedMedia(t)
	for _, f := range playerFixtures {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			// mpv exits 2 when a file fails to load or play.
			runTool(t, exec.CommandContext(playerCtx(t), "mpv", "--no-config", "--vo=null", "--ao=null",
				"--length=2", "--start=20", s.URL+f.url))
			s.Stderr.waitRequests(t, "mpv's request", func(l accessLine) bool {
				return l.Path == "/stream/"+f.file && l.Status == http.StatusPartialContent && l.Bytes > 0
			})
		})
	}
}

// vlcCommand returns a cvlc command line that plays url for 4 s and then
// exits by itself. VLC refuses to run as root, so as root it runs as nobody
// with a home of its own.
func vlcCommand(t *testing.T, url string) *exec.Cmd {
	t.Helper()
	testenv.NeedTool(t, "cvlc")
	// --play-and-exit quits at the end of the playlist; --run-time bounds
	// each item (one item here), so VLC stops after 4 s of playing.
	args := []string{"cvlc", "--play-and-exit", "--run-time=4", "-I", "dummy", "-A", "dummy", "-V", "dummy", url}
	home, err := os.MkdirTemp("", "vlc-home-") // not t.TempDir: its parent is 0700 root
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if os.Geteuid() == 0 {
		testenv.NeedTool(t, "setpriv")
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Skipf("no user nobody to run VLC as: %v", err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		if err := os.Chown(home, uid, gid); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"setpriv", "--reuid=" + nobody.Uid, "--regid=" + nobody.Gid, "--clear-groups",
			"env", "HOME=" + home}, args...)
	} else {
		args = append([]string{"env", "HOME=" + home}, args...)
	}
	return exec.CommandContext(playerCtx(t), args[0], args[1:]...)
}

func TestVLCPlaysPlaylist(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "cvlc")
	// One item per playlist: --run-time applies to each item.
	for _, format := range []string{"m3u8", "pls", "xspf"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			s := servedMedia(t)
			head, _ := do(t, http.MethodHead, s.URL+"/playlist/Videos/clip.mp4."+format)
			ctype := head.Header.Get("Content-Type")
			cmd := vlcCommand(t, s.URL+"/playlist/Videos/clip.mp4."+format)
			start := time.Now()
			// VLC exits 0 even when it found nothing to play in the
			// playlist: the access log is what shows it played.
			runTool(t, cmd)
			ran := time.Since(start)
			t.Logf("VLC ran %v", ran.Round(time.Millisecond))
			// --run-time=4 stops VLC after 4 s of playback; one that found
			// nothing to play quits at once. A lower bound cannot flake
			// on a loaded machine: load only makes VLC take longer.
			if ran < 3*time.Second {
				t.Errorf("VLC exited after %v, before 3 s of playback", ran)
			}
			s.Stop(t) // every request VLC made is now in the log
			var playlist, media []accessLine
			for _, l := range s.requests() {
				switch {
				case l.Method == http.MethodGet && l.Path == "/playlist/Videos/clip.mp4."+format && l.Status == http.StatusOK:
					playlist = append(playlist, l)
				case l.Path == "/stream/"+mp4Path && (l.Status == http.StatusOK || l.Status == http.StatusPartialContent) && l.Bytes > 0:
					media = append(media, l)
				}
			}
			if len(playlist) == 0 {
				t.Errorf("VLC never fetched the playlist; log:\n%s", s.Stderr)
			}
			if len(media) == 0 {
				// VLC 3's M3U reader (modules/demux/playlist/m3u.c) declines
				// a list served as application/vnd.apple.mpegurl, HLS's type,
				// and its HLS reader declines a list without #EXT-X- tags.
				t.Errorf("VLC fetched no media bytes from /stream/%s (200/206, bytes > 0); the playlist's Content-Type is %q; log:\n%s",
					mp4Path, ctype, s.Stderr)
			}
			t.Logf("VLC's requests: %+v", s.requests())
		})
	}
}
