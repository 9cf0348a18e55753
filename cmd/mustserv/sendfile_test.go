package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mustserv/internal/testenv"
)

// sendfileRet matches a completed sendfile call in `strace -f` output,
// whole ("pid sendfile(...) = N") or resumed ("pid <... sendfile resumed>...) = N").
var sendfileRet = regexp.MustCompile(`sendfile(?:\(| resumed>).*\)\s+= (-?\d+)`)

// TestSendfileUsed runs the real binary under strace and checks that file
// bodies, with and without Range, reach the socket through sendfile(2)
// rather than being copied through user space.
func TestSendfileUsed(t *testing.T) {
	t.Parallel()
	testenv.NeedTool(t, "strace")
	bin := buildBinary(t)

	// strace needs ptrace: root, or a yama ptrace_scope that allows it.
	if out, err := exec.CommandContext(playerCtx(t), "strace", "-f", "-e", "trace=sendfile", "-o", os.DevNull, "true").CombinedOutput(); err != nil {
		if testenv.InCI() {
			t.Fatalf("strace cannot trace: %v\n%s", err, out)
		}
		t.Skipf("strace cannot trace here (ptrace not permitted?): %v\n%s", err, out)
	}

	dir := filepath.Join(t.TempDir(), "Big")
	const size = 40 << 20
	want := writeNoise(t, dir, "noise.mp4", size)
	trace := filepath.Join(t.TempDir(), "strace.log")
	// The same folder twice: "Paced" hands bodies to the pacer (with a
	// burst longer than the file, so the test does not wait for the
	// pace), "Plain" is served by net/http.
	cfg := writeConfig(t, fmt.Sprintf(`
[auth]
mode = "none"
[[library]]
name = "Paced"
path = %[1]s
[library.pace]
burst = "1h"
[[library]]
name = "Plain"
path = %[1]s
[library.pace]
enabled = false
`, tomlString(dir)))
	p := startProc(t, "strace", "-f", "-e", "trace=sendfile", "-o", trace,
		bin, "serve", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--config", cfg)

	for _, tc := range []struct {
		lib, rangeHeader string
		from             int
		status           int
	}{
		{"Paced", "", 0, http.StatusOK},
		{"Paced", "bytes=1000-", 1000, http.StatusPartialContent},
		{"Plain", "", 0, http.StatusOK},
		{"Plain", "bytes=1000-", 1000, http.StatusPartialContent},
	} {
		var hdr []string
		if tc.rangeHeader != "" {
			hdr = []string{"Range", tc.rangeHeader}
		}
		resp, body := get(t, p.URL+"/stream/"+tc.lib+"/noise.mp4", hdr...)
		if resp.StatusCode != tc.status {
			t.Fatalf("Range %q: %s, want %d", tc.rangeHeader, resp.Status, tc.status)
		}
		cw := &compareWriter{want: want[tc.from:]}
		cw.Write(body)
		if err := cw.done(); err != nil {
			t.Errorf("Range %q: body: %v", tc.rangeHeader, err)
		}
	}

	// strace runs mustserv as its child; signal mustserv itself.
	children, err := os.ReadFile("/proc/" + strconv.Itoa(p.Cmd.Process.Pid) + "/task/" + strconv.Itoa(p.Cmd.Process.Pid) + "/children")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(children))[0])
	if err != nil {
		t.Fatalf("children of strace: %q: %v", children, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 30*time.Second); err != nil { // strace exits with its child's status
		t.Fatalf("exit: %v, want 0; stderr:\n%s", err, tail(p.Stderr.String(), 4000))
	}

	var sent, calls int64
	for line := range strings.Lines(string(readFile(t, trace))) {
		m := sendfileRet.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if n, _ := strconv.ParseInt(m[1], 10, 64); n > 0 {
			sent += n
			calls++
		}
	}
	// net/http writes the first 512 bytes of each body (its sniffing
	// window) through its buffer, then hands the rest to sendfile; the
	// pacer sends whole bodies with sendfile.
	const sniffLen = 512
	bodies := int64(2 * (size + size - 1000))
	if wantSent := bodies - 2*sniffLen; sent < wantSent || sent > bodies {
		t.Errorf("sendfile sent %d bytes in %d calls, want from %d (all four bodies but the plain ones' first %d bytes) to %d\ntrace:\n%s",
			sent, calls, wantSent, sniffLen, bodies, tail(string(readFile(t, trace)), 4000))
	}
	t.Logf("sendfile sent %d bytes in %d successful calls", sent, calls)
}
