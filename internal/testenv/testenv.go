// Package testenv helps tests that need programs outside Go (ffmpeg, cvlc,
// nginx, strace...): such a test skips with the reason on a developer's
// machine that lacks the program, and fails in CI (CI=true), where .ci/run
// installs every one of them, so a missing tool can never pass silently.
//
// It is imported by tests only and holds no state.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// NeedTool returns the path of program name, found on PATH or where `go
// install` puts programs ($GOBIN, else $GOPATH/bin, else ~/go/bin: how
// .ci/run installs versitygw). When it is missing the test is skipped, or
// failed in CI.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range goBins() {
		if fi, serr := os.Stat(filepath.Join(dir, name)); serr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return filepath.Join(dir, name)
		}
	}
	if InCI() {
		t.Fatalf("%s is required in CI (.ci/run installs it): %v", name, err)
	}
	t.Skipf("%s not installed: %v", name, err)
	return ""
}

// NeedRoot skips (or, in CI, fails) a test that must run as root, for
// example to drop privileges for VLC with setpriv.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatal("this test needs root in CI")
	}
	t.Skip("needs root")
}

// goBins are the folders `go install` may have put a program in.
func goBins() []string {
	if d := os.Getenv("GOBIN"); d != "" {
		return []string{d}
	}
	var dirs []string
	for _, p := range filepath.SplitList(os.Getenv("GOPATH")) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	return dirs
}

// FreePort returns a loopback TCP port that nothing listened on a moment
// ago, for a server whose address must be written into its configuration
// before it starts (another process may take it in between: rare, and the
// server then fails to start, loudly).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
