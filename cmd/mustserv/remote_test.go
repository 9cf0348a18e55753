package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mustserv/internal/storage/httporigin"
	"mustserv/internal/storage/storagetest"
	"mustserv/internal/testenv"
	"mustserv/internal/testenv/origins"
)

// Issue 7: libraries beyond the local disk, end to end — real origins
// (nginx, versitygw, another MuStServ) behind a real MuStServ, read by
// real players.

// TestOriginMuStServ runs the storage conformance suite over another
// MuStServ's /stream/<library>/ listings through the http backend: open,
// and with accounts on, through an API key sent as a Bearer token.
func TestOriginMuStServ(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Fixture")
	origins.WriteTree(t, dir, storagetest.Files())
	t.Run("no-auth", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, dir)
		storagetest.Run(t, originOf(t, s.URL+"/stream/Fixture/", ""))
	})
	t.Run("api-key", func(t *testing.T) {
		t.Parallel()
		data := t.TempDir()
		s := startRun(t, nil, "--auth", "--listen", "127.0.0.1:0", "--data", data, dir)
		if _, _, err := runCmd(t, "user", "add", "reader", "--data", data, "--library", "Fixture",
			"--password-file", passwordFile(t, "reader's password")); err != nil {
			t.Fatal(err)
		}
		out, _, err := runCmd(t, "user", "key", "add", "reader", "origin", "--data", data)
		key := strings.TrimSpace(out)
		noteSecret(key)
		if err != nil || !strings.HasPrefix(key, "mk_") {
			t.Fatalf("user key add: %v %q", err, out)
		}
		// Without the key the listing is refused: the key is what
		// opens it below.
		if _, err := originOf(t, s.URL+"/stream/Fixture/", "").ReadDir(t.Context(), "."); err == nil {
			t.Error("ReadDir without the API key succeeded on a server with accounts")
		}
		storagetest.Run(t, originOf(t, s.URL+"/stream/Fixture/", key))
	})
}

// originOf is an http backend of raw, sending token as a Bearer token
// when it is not empty.
func originOf(t *testing.T, raw, token string) *httporigin.Backend {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := httporigin.New(u, httporigin.Options{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// Names of the media every library of TestRemoteLibraries holds: spaces
// and letters outside ASCII, as URLs and S3 keys escape them.
const (
	songName  = "chanson été 日本.mp3"
	videoName = "grand film ü.mp4"
)

// remoteLibrary is one library of TestRemoteLibraries and its song's
// title, a word found only there.
type remoteLibrary struct{ name, title string }

var remoteLibraries = []remoteLibrary{
	{"Local", "Zebulon alpha"},
	{"Web", "Zebulon bravo"},
	{"Bucket", "Zebulon charlie"},
}

// TestRemoteLibraries serves a local folder, an nginx autoindex and a
// versitygw bucket as three libraries of one MuStServ (and the bucket
// again with redirect = true), with a range cache, and checks that every
// one is scanned, browsed, searched, served byte for byte, probed and
// seeked by ffmpeg, and played by VLC from one playlist.
func TestRemoteLibraries(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"ffmpeg", "ffprobe", "cvlc", "nginx", "versitygw"} {
		testenv.NeedTool(t, tool)
	}
	began := time.Now()
	media := makeRemoteMedia(t)
	t.Logf("ffmpeg made the media in %v", time.Since(began).Round(time.Millisecond))
	video := readFile(t, filepath.Join(media, videoName))

	local := t.TempDir()
	web := t.TempDir()
	v := origins.StartVersity(t)
	noteSecret(v.SecretKey)
	bucket := v.Bucket(t, "media")
	for _, lib := range remoteLibraries {
		files := map[string][]byte{videoName: video, songName: readFile(t, filepath.Join(media, lib.name+".mp3"))}
		switch lib.name {
		case "Local":
			origins.WriteTree(t, local, files)
		case "Web":
			origins.WriteTree(t, web, files)
		case "Bucket":
			v.PutFiles(t, bucket, "music", files)
		}
	}
	v.Put(t, bucket, "direct/"+videoName, video)
	// Pacing is off: these streams are read whole, several times, and
	// pacing is tested elsewhere (pacing_test.go).
	cfg := fmt.Sprintf(`[pace]
enabled = false

[storage]
cache_size = 67108864
read_ahead = 1048576

[[library]]
name = "Local"
path = %s

[[library]]
name = "Web"
url = %s

[[library]]
name = "Bucket"
url = %s
access_key = %s
secret_key = %s

[[library]]
name = "Direct"
url = %s
access_key = %s
secret_key = %s
redirect = true
`, tomlString(local), tomlString(origins.StartNginx(t, web)+"/json/"),
		tomlString(v.URL(bucket, "music")), tomlString(v.AccessKey), tomlString(v.SecretKey),
		tomlString(v.URL(bucket, "direct")), tomlString(v.AccessKey), tomlString(v.SecretKey))
	began = time.Now()
	s := startServer(t, "--config", writeConfig(t, cfg))
	waitScanned(t, s.URL)
	t.Logf("the server started and scanned its four libraries in %v", time.Since(began).Round(time.Millisecond))

	streams := map[string]string{} // library → its video's stream URL
	for _, lib := range remoteLibraries {
		streams[lib.name] = s.URL + checkBrowse(t, s.URL, lib.name)
		checkSearch(t, s.URL, lib)
	}
	// First, while nothing else reads: a second stream of a file is
	// served from the range cache.
	checkCached(t, s.URL, streams["Bucket"], video)

	sourceDuration := ffprobeDuration(t, filepath.Join(media, videoName))
	t.Run("players", func(t *testing.T) {
		for _, lib := range remoteLibraries {
			t.Run(lib.name, func(t *testing.T) {
				t.Parallel()
				checkBytes(t, streams[lib.name], video)
				if d := ffprobeDuration(t, streams[lib.name]); math.Abs(d-sourceDuration) > 0.5 {
					t.Errorf("ffprobe of %s: %.3f s, the source lasts %.3f s", streams[lib.name], d, sourceDuration)
				}
				// -xerror: a decoding error is a failure (exit code).
				runTool(t, exec.CommandContext(playerCtx(t), "ffmpeg", "-nostdin", "-v", "error", "-xerror",
					"-ss", "10", "-i", streams[lib.name], "-t", "3", "-f", "null", "-"))
			})
		}
		t.Run("Direct", func(t *testing.T) {
			t.Parallel()
			checkRedirect(t, s.URL+"/stream/Direct/"+url.PathEscape(videoName), v.Endpoint+"/media/direct/", sourceDuration)
		})
		t.Run("VLC", func(t *testing.T) {
			t.Parallel()
			runTool(t, vlcCommand(t, s.URL+"/api/search/playlist.m3u8?q=zebulon"))
		})
	})
	s.Stop(t) // every request is in the access log now
	for _, lib := range remoteLibraries {
		// An open-ended range from the middle is ffmpeg's seek: the
		// other requests of the video start at 0 or name both ends.
		if !slices.ContainsFunc(s.requests(), func(l accessLine) bool {
			return l.Path == "/stream/"+lib.name+"/"+videoName && rangeStart(l.Range) > 0 && l.Status == http.StatusPartialContent
		}) {
			t.Errorf("ffmpeg did not seek in %s's video with a Range request; requests: %+v", lib.name, s.requests())
		}
		// Only VLC asks for the songs over HTTP: the scan reads the
		// libraries directly.
		if !slices.ContainsFunc(s.requests(), func(l accessLine) bool {
			return strings.HasPrefix(l.Path, "/stream/"+lib.name+"/") && strings.HasSuffix(l.Path, ".mp3") &&
				(l.Status == http.StatusOK || l.Status == http.StatusPartialContent) && l.Bytes > 0
		}) {
			t.Errorf("VLC fetched no bytes of %s's song; requests: %+v", lib.name, s.requests())
		}
	}
}

// makeRemoteMedia encodes the media of TestRemoteLibraries into a folder:
// videoName, a 20 s MJPEG and AAC MP4 of about 6 MB (large enough that
// ffmpeg seeks with a Range request), and <library>.mp3, a 3 s song
// titled as remoteLibraries says.
func makeRemoteMedia(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	runTool(t, exec.CommandContext(playerCtx(t), "ffmpeg", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=300:duration=20",
		"-t", "20", "-c:v", "mjpeg", "-q:v", "3", "-c:a", "aac", "-metadata", "title=Quokka film",
		"-movflags", "+faststart", filepath.Join(dir, videoName)))
	if fi, err := os.Stat(filepath.Join(dir, videoName)); err != nil || fi.Size() < 5<<20 {
		t.Fatalf("the video is smaller than 5 MB: %v %v", fi, err)
	}
	for i, lib := range remoteLibraries {
		runTool(t, exec.CommandContext(playerCtx(t), "ffmpeg", "-nostdin", "-v", "error",
			"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:duration=3", 440+110*i),
			"-c:a", "libmp3lame", "-metadata", "title="+lib.title, filepath.Join(dir, lib.name+".mp3")))
	}
	return dir
}

// apiItem is what the tests read of an item of the JSON API.
type apiItem struct {
	Library, Path, Title, Stream string
}

// getJSON GETs url and decodes its 200 answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, body := get(t, url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

// checkBrowse checks that /api/browse of library lists its two files, and
// returns the video's stream path.
func checkBrowse(t *testing.T, base, library string) string {
	t.Helper()
	var folder struct{ Items []apiItem }
	getJSON(t, base+"/api/browse/"+library, &folder)
	var names []string
	stream := ""
	for _, it := range folder.Items {
		names = append(names, it.Path)
		if it.Path == videoName {
			stream = it.Stream
		}
	}
	if len(names) != 2 || stream == "" || !strings.Contains(strings.Join(names, "\n"), songName) {
		t.Fatalf("/api/browse/%s lists %q, want %q and %q", library, names, songName, videoName)
	}
	return stream
}

// checkSearch checks that the word only lib's song has in its title finds
// that song, in that library.
func checkSearch(t *testing.T, base string, lib remoteLibrary) {
	t.Helper()
	word := strings.Fields(lib.title)[1]
	var res struct{ Items []apiItem }
	getJSON(t, base+"/api/search?q="+word, &res)
	if len(res.Items) != 1 || res.Items[0].Library != lib.name || res.Items[0].Title != lib.title || res.Items[0].Path != songName {
		t.Errorf("search %q found %+v, want %s's %q titled %q", word, res.Items, lib.name, songName, lib.title)
	}
}

// checkBytes checks that stream serves want whole and a range from its
// middle, byte for byte.
func checkBytes(t *testing.T, stream string, want []byte) {
	t.Helper()
	resp, body := get(t, stream)
	if resp.StatusCode != http.StatusOK || sha256.Sum256(body) != sha256.Sum256(want) {
		t.Errorf("GET %s: %s, %d bytes with another sha256 than the source's %d", stream, resp.Status, len(body), len(want))
	}
	etag, lastMod := resp.Header.Get("Etag"), resp.Header.Get("Last-Modified")
	if etag == "" || lastMod == "" {
		t.Errorf("GET %s: ETag %q, Last-Modified %q; want both", stream, etag, lastMod)
	}
	// A seek as VLC sends it (If-Unmodified-Since) and as browsers do
	// (If-Range): the validators are the same from one request to the
	// next, so both get the range.
	lo, hi := len(want)/2-12345, len(want)/2+54321
	for _, cond := range [][2]string{{"If-Unmodified-Since", lastMod}, {"If-Range", etag}} {
		resp, body = get(t, stream, "Range", fmt.Sprintf("bytes=%d-%d", lo, hi), cond[0], cond[1])
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[lo:hi+1]) {
			t.Errorf("GET %s bytes=%d-%d %s: %s, %d bytes, not the source's", stream, lo, hi, cond[0], resp.Status, len(body))
		}
		if resp.Header.Get("Etag") != etag || resp.Header.Get("Last-Modified") != lastMod {
			t.Errorf("GET %s again: ETag %q, Last-Modified %q; the first said %q, %q", stream,
				resp.Header.Get("Etag"), resp.Header.Get("Last-Modified"), etag, lastMod)
		}
	}
}

// checkCached streams a remote file twice: the second time nothing is
// fetched from the storage and the range cache serves the bytes.
func checkCached(t *testing.T, base, stream string, want []byte) {
	t.Helper()
	names := []string{"mustserv_storage_fetched_bytes_total", "mustserv_storage_cache_hit_bytes_total"}
	checkBytes(t, stream, want)
	before := metricSamples(scrapeMetrics(t, base), names...)
	checkBytes(t, stream, want)
	after := metricSamples(scrapeMetrics(t, base), names...)
	if before[names[0]] <= 0 || after[names[0]] != before[names[0]] {
		t.Errorf("%s was %v after the first streams and %v after the second, want the same (> 0)", names[0], before[names[0]], after[names[0]])
	}
	if hit := after[names[1]] - before[names[1]]; hit < float64(len(want)) {
		t.Errorf("%s grew by %v on the second stream of %d bytes", names[1], hit, len(want))
	}
}

// checkRedirect checks that a library with redirect = true sends the
// player to a presigned URL of its storage below prefix, and that ffprobe
// follows it to the file.
func checkRedirect(t *testing.T, stream, prefix string, duration float64) {
	t.Helper()
	resp, err := noRedirect.Get(stream)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, prefix) || !strings.Contains(loc, "X-Amz-Signature=") {
		t.Fatalf("GET %s: %s to %q, want 302 to a presigned URL below %s", stream, resp.Status, loc, prefix)
	}
	if d := ffprobeDuration(t, stream); math.Abs(d-duration) > 0.5 {
		t.Errorf("ffprobe through the redirect: %.3f s, the source lasts %.3f s", d, duration)
	}
}
