package main

import (
	"bytes"
	"context"
	byteorder "encoding/binary" // binary is harness_test.go's built mustserv
	"encoding/json"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// browserDir holds the browser scenarios, their shared harness.mjs and
// their npm dependencies (playwright-core; .ci/run installs them with npm
// ci).
const browserDir = "../../test/browser"

// TestBrowser drives the web UI in headless Debian Chromium: the scenario in
// test/browser/scenario.mjs browses, searches, plays, seeks, queues, opens a
// video and fetches a playlist's links, and saves screenshots at phone and
// desktop sizes. Its checks are in the script; this test gives it a server
// with a scanned library and fails with its output when one fails.
//
// It does not run in parallel: Chromium keeps both cores busy for seconds,
// which skewed TestPacingAccuracy's startup latencies (p95 294 ms against
// its 200 ms bound) when the two overlapped. Sequential tests finish before
// parallel ones start.
func TestBrowser(t *testing.T) {
	browser := needBrowser(t)
	artifacts := browserArtifacts(t, "artifacts", "browser")

	lib := t.TempDir()
	for _, f := range []string{
		"Music/Sine Band/First Album/01 Sine Ä.mp3",
		"Music/Sine Band/First Album/02 Tone.ogg",
		"Music/Lossless/tone.flac",
		"Music/notes.txt",
		"Videos/clip.mp4",
		"Videos/clip.webm",
	} {
		linkOrCopy(t, filepath.Join(mediaDir, f), filepath.Join(lib, f))
	}
	// Chromium waits for the download it has rather than open a second
	// connection when a seek lands a few megabytes ahead or less (a seek
	// to 33 s of the 160 kB MP3 sent no request), so the fixtures are too
	// small to show a seek's Range request. A 60 s CD-quality WAV (10 MB)
	// is, with pacing left on with its default burst: a seek to 50 s lands
	// 7 MB beyond what the browser has.
	writeWAV(t, filepath.Join(lib, longWAVPath), 60, map[string]string{
		"INAM": "Déjà Vu", "IART": "Sine Band", "IPRD": "Second Album",
	})
	// The streams the browser left behind end when the pacer's next write
	// finds them closed, seconds later at an MP3's rate: the server's stop
	// at cleanup need not wait for them.
	conf := writeConfig(t, "[server]\nshutdown_grace = \"1s\"\n")
	s := startServer(t, "--config", conf, filepath.Join(lib, "Music"), filepath.Join(lib, "Videos"))
	waitScanned(t, s.URL)

	browser.run(t, s, 120*time.Second, "scenario.mjs", s.URL, artifacts)

	// The server saw the seek the page reported: a 206 answer from past
	// the start of the WAV (the log shows the range it sent, "bytes=N-M").
	// A paced stream's line is written when its body ends: the browser has
	// closed by now.
	s.Stderr.waitRequests(t, "206 answer to the seek's Range request", func(l accessLine) bool {
		first, _, _ := strings.Cut(strings.TrimPrefix(l.Range, "bytes="), "-")
		n, err := strconv.ParseInt(first, 10, 64)
		return l.Path == "/stream/"+longWAVPath && l.Status == http.StatusPartialContent && err == nil && n > 0
	})
}

// longWAVPath is TestBrowser's generated WAV file in its library.
const longWAVPath = "Music/Sine Band/Second Album/01 Déjà Vu.wav"

// writeWAV writes a 16-bit stereo 44.1 kHz WAV file of a 440 Hz sine lasting
// seconds, with info as its LIST/INFO tags (INAM title, IART artist, IPRD
// album).
func writeWAV(t *testing.T, name string, seconds int, info map[string]string) {
	t.Helper()
	const rate, channels, bytesPerSample = 44100, 2, 2
	le := byteorder.LittleEndian
	list := []byte("INFO")
	for _, id := range slices.Sorted(maps.Keys(info)) {
		v := append([]byte(info[id]), 0)
		list = le.AppendUint32(append(list, id...), uint32(len(v)))
		list = append(list, v...)
		if len(v)%2 == 1 {
			list = append(list, 0) // chunks are padded to an even size
		}
	}
	// One second of samples, repeated: 440 Hz fits 440 whole periods.
	second := make([]byte, rate*channels*bytesPerSample)
	for i := range rate {
		v := int16(8000 * math.Sin(2*math.Pi*440*float64(i)/rate))
		for c := range channels {
			le.PutUint16(second[(i*channels+c)*bytesPerSample:], uint16(v))
		}
	}
	data := len(second) * seconds

	b := []byte("RIFF")
	b = le.AppendUint32(b, uint32(4+8+16+8+len(list)+8+data))
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, 1) // PCM
	b = le.AppendUint16(b, channels)
	b = le.AppendUint32(b, rate)
	b = le.AppendUint32(b, rate*channels*bytesPerSample)
	b = le.AppendUint16(b, channels*bytesPerSample)
	b = le.AppendUint16(b, 8*bytesPerSample)
	b = le.AppendUint32(append(b, "LIST"...), uint32(len(list)))
	b = append(b, list...)
	b = le.AppendUint32(append(b, "data"...), uint32(data))
	for range seconds {
		b = append(b, second...)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// browserTools are the programs that run test/browser's scripts.
type browserTools struct{ node, chromium string }

// needBrowser returns node and chromium once they and test/browser's
// playwright-core are installed; otherwise it skips the test, or fails it
// in CI.
func needBrowser(t *testing.T) browserTools {
	t.Helper()
	b := browserTools{chromium: testenv.NeedTool(t, "chromium"), node: testenv.NeedTool(t, "node")}
	if _, err := os.Stat(filepath.Join(browserDir, "node_modules", "playwright-core", "package.json")); err != nil {
		if testenv.InCI() {
			t.Fatalf("playwright-core is required in CI (.ci/run runs npm ci --prefix test/browser): %v", err)
		}
		t.Skipf("playwright-core not installed (npm ci --prefix test/browser): %v", err)
	}
	return b
}

// run runs node test/browser/<script> args with $CHROMIUM set, for at most
// limit, and returns what it printed. When the script fails, so does t,
// with that output and the tail of s's log.
func (b browserTools) run(t *testing.T, s *server, limit time.Duration, script string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, b.node, append([]string{filepath.Join(browserDir, script)}, args...)...)
	cmd.Env = append(os.Environ(), "CHROMIUM="+b.chromium)
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s took %v", script, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("node %s: %v\n%s\nserver log (tail):\n%s", script, err, out.String(), tail(s.Stderr.String(), 6000))
	}
	t.Logf("%s output:\n%s", script, out.String())
	return out.String()
}

// browserArtifacts returns the folder for a browser test's screenshots:
// $MUSTSERV_ARTIFACTS/<env> when that is set (CI keeps that folder), else
// test/browser/<local>, which git ignores. It is emptied first so that
// every file in it is from this run; each test has its own.
func browserArtifacts(t *testing.T, local, env string) string {
	t.Helper()
	dir := filepath.Join(browserDir, local)
	if a := os.Getenv("MUSTSERV_ARTIFACTS"); a != "" {
		dir = filepath.Join(a, env)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// linkOrCopy hard-links src to dst, creating dst's folders, and copies it
// when the two are on different file systems.
func linkOrCopy(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Link(src, dst) == nil {
		return
	}
	b := readFile(t, src)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitScanned polls /api/scan until the first scan has finished, so that
// search and the album views see every file.
func waitScanned(t *testing.T, base string) {
	t.Helper()
	var last string
	for range 300 {
		resp, err := http.Get(base + "/api/scan")
		if err == nil {
			var p struct {
				Running  bool      `json:"running"`
				Finished time.Time `json:"finished"`
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = resp.Status + " " + strings.TrimSpace(string(body))
			if resp.StatusCode == http.StatusOK {
				if err := json.Unmarshal(body, &p); err != nil {
					t.Fatalf("GET /api/scan: %v: %s", err, body)
				}
				if !p.Running && !p.Finished.IsZero() {
					return
				}
			}
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond) // a polling interval, bounded by the loop
	}
	t.Fatalf("the first scan did not finish within 30s; last GET /api/scan: %s", last)
}
