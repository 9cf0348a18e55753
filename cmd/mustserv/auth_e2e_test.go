package main

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mustserv/internal/testenv"
)

// TestSignedPlaylistPlayers is issue 6 end to end with real clients: the
// first admin is made through the setup link the server printed, a user
// of one library through `mustserv user`, and the playlist that user
// downloads plays in VLC, ffmpeg seeks and mpv starts in the middle
// through its signed links — none of them can log in. Afterwards no
// password, session or link signature is in the server's log.
func TestSignedPlaylistPlayers(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "cvlc")
	testenv.NeedTool(t, "ffmpeg")
	testenv.NeedTool(t, "mpv")
	data := t.TempDir()
	s := startRun(t, nil, "--auth", "--listen", "127.0.0.1:0", "--data", data,
		filepath.Join(mediaDir, "Music"), filepath.Join(mediaDir, "Videos"))

	// First run: only the printed link makes the admin, once.
	m := regexp.MustCompile(`(https?://\S+/setup\?token=([0-9a-f]+))`).FindStringSubmatch(s.Stdout.String())
	if m == nil {
		t.Fatalf("no setup link on stdout:\n%s", s.Stdout)
	}
	setupURL, token := m[1], m[2]
	const adminPW, tvPW = "the admin's password", "the television's password"
	if resp, _ := get(t, s.URL+"/setup?token=0123"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("setup with a wrong token: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, setupURL); resp.StatusCode != http.StatusOK {
		t.Fatalf("setup page: %d", resp.StatusCode)
	}
	resp, err := noRedirect.PostForm(s.URL+"/setup", url.Values{"token": {token}, "name": {"admin"}, "password": {adminPW}, "password2": {adminPW}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Fatalf("setup: %s, cookies %v", resp.Status, resp.Cookies())
	}
	adminCookie := resp.Cookies()[0].Value
	noteSecret(adminCookie, adminPW, tvPW)
	if resp, _ := get(t, setupURL); resp.StatusCode != http.StatusNotFound {
		t.Errorf("setup link after use: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, s.URL+"/api/me", "Cookie", "mustserv_session="+adminCookie); resp.StatusCode != http.StatusOK {
		t.Errorf("admin session: %d", resp.StatusCode)
	}

	if _, _, err := runCmd(t, "user", "add", "tv", "--library", "Videos", "--data", data, "--password-file", passwordFile(t, tvPW)); err != nil {
		t.Fatal(err)
	}
	tv, code := login(t, s.URL, "tv", tvPW)
	if tv == "" {
		t.Fatalf("tv cannot sign in: %d", code)
	}
	if resp, _ := get(t, s.URL+"/stream/"+mp4Path); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("stream without credentials: %d, want 401", resp.StatusCode)
	}
	if resp, _ := get(t, s.URL+"/stream/"+mp3Path, "Cookie", "mustserv_session="+tv); resp.StatusCode != http.StatusNotFound {
		t.Errorf("tv streams Music: %d, want 404", resp.StatusCode)
	}
	resp, body := get(t, s.URL+"/playlist/Videos.m3u8", "Cookie", "mustserv_session="+tv)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("playlist: %s", resp.Status)
	}
	var links []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "http") {
			links = append(links, line)
			if u, err := url.Parse(line); err == nil {
				noteSecret(u.Query().Get("t"))
			}
		}
	}
	clip := ""
	for _, l := range links {
		if strings.Contains(l, "/stream/"+mp4Path+"?t=v1.") {
			clip = l
		}
	}
	if clip == "" {
		t.Fatalf("no signed link of %s in the playlist:\n%s", mp4Path, body)
	}

	// VLC plays the downloaded playlist (a file: VLC opens it as a user
	// would after downloading it from the UI).
	dir, err := os.MkdirTemp("", "mustserv-pl-") // readable by nobody, unlike t.TempDir
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	pl := filepath.Join(dir, "Videos.m3u8")
	if err := os.WriteFile(pl, []byte("#EXTM3U\n#EXTINF:-1,clip\n"+clip+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runTool(t, vlcCommand(t, pl))
	vlc := s.Stderr.waitRequests(t, "VLC's stream request by the signed link", func(l accessLine) bool {
		return l.Path == "/stream/"+mp4Path && (l.Status == http.StatusOK || l.Status == http.StatusPartialContent) && l.Bytes > 0
	})
	t.Logf("VLC: %+v", vlc)
	// ffmpeg seeks to 20 s (a second request with a Range) and mpv
	// starts in the middle, both by the signed link.
	runTool(t, exec.CommandContext(playerCtx(t), "ffmpeg", "-nostdin", "-v", "error", "-ss", "20", "-i", clip, "-t", "1", "-f", "null", "-"))
	runTool(t, exec.CommandContext(playerCtx(t), "mpv", "--no-config", "--vo=null", "--ao=null", "--length=1", "--start=20", clip))
	// The link is for that file only.
	other := strings.Replace(clip, "/stream/"+mp4Path, "/stream/"+mp3Path, 1)
	if resp, _ := get(t, other); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the clip's signature on another file: %d, want 403", resp.StatusCode)
	}

	// Metrics and error pages carry no secret either.
	var pages []string
	_, metrics := get(t, s.URL+"/metrics", "Cookie", "mustserv_session="+adminCookie)
	pages = append(pages, string(metrics))
	for _, target := range []string{other, clip + "x", s.URL + "/stream/" + mp4Path + "?t=" + url.QueryEscape(tv), s.URL + "/nothing?t=" + tv} {
		_, body := get(t, target)
		pages = append(pages, string(body))
	}
	if !strings.Contains(pages[0], "mustserv_streams_admitted_total") {
		t.Errorf("/metrics as admin: %.200s", pages[0])
	}

	s.Stop(t)
	played := 0
	for _, l := range s.requests() {
		if l.Path == "/stream/"+mp4Path && (l.Status == http.StatusOK || l.Status == http.StatusPartialContent) && l.Bytes > 0 {
			played++
		}
	}
	if played < 3 {
		t.Errorf("%d successful stream requests by the players, want at least 3 (VLC, ffmpeg, mpv)", played)
	}
	logs := s.Stderr.String()
	secrets := []string{adminPW, tvPW, adminCookie, tv}
	for _, l := range links {
		u, _ := url.Parse(l)
		tok := u.Query().Get("t")
		secrets = append(secrets, tok, tok[strings.LastIndexByte(tok, '.')+1:])
	}
	for _, sec := range secrets {
		if strings.Contains(logs, sec) {
			t.Errorf("a secret (%.10s…) is in the server's log", sec)
		}
		for i, p := range pages {
			if strings.Contains(p, sec) {
				t.Errorf("a secret (%.10s…) is in answer %d (metrics or an error page)", sec, i)
			}
		}
	}
	if !strings.Contains(logs, token) {
		t.Error("the setup token is not in the log: the log should have carried the setup link")
	}
}
