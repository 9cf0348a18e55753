// Package origins starts real origin servers for tests: nginx serving a
// folder with its autoindex (StartNginx) and versitygw serving S3 from a
// folder (StartVersity, NewVersity). Each runs as a child process on a
// loopback port of its own, with its files in a temporary folder; its
// readiness is polled with a deadline, and it is stopped when the test
// (or, for NewVersity, its Close) ends.
//
// It fakes nothing and installs nothing: a program that is missing skips
// the test, or fails it in CI, through testenv.NeedTool. It is imported by
// tests only.
package origins

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"time"
)

// process is a child process whose output is kept for error messages.
// out may be read only once exited is closed: the process writes to it
// until then.
type process struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan struct{}
}

// launch starts bin with args and env added to the environment.
func launch(bin string, args, env []string) (*process, error) {
	p := &process{cmd: exec.Command(bin, args...), out: new(bytes.Buffer), exited: make(chan struct{})}
	p.cmd.Env = append(p.cmd.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	return p, nil
}

// stop kills the process and waits until it has exited; it returns the
// process's output.
func (p *process) stop() string {
	p.cmd.Process.Kill()
	<-p.exited
	return p.out.String()
}

// errExited is returned by waitUntil when the process exits first, which
// for a server started on a just-freed port usually means the port was
// taken again.
var errExited = errors.New("exited before it was ready")

// waitUntil polls ready every 10 ms until it returns nil, the process
// exits, or limit passes. On failure the process has been stopped and
// the error carries its output.
func (p *process) waitUntil(limit time.Duration, ready func() error) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s %w (%v):\n%s", p.cmd.Path, errExited, p.cmd.ProcessState, p.out)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			out := p.stop()
			return fmt.Errorf("%s not ready within %v: %v\n%s", p.cmd.Path, limit, err, out)
		}
	}
}

// onFreePort calls start with a free loopback address ("127.0.0.1:port").
// The port is free when picked but may be taken again before the server
// binds it: then start fails with errExited, and another port is tried,
// three times in all.
func onFreePort(start func(addr string) error) error {
	var err error
	for range 3 {
		var l net.Listener
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr := l.Addr().String()
		l.Close()
		if err = start(addr); !errors.Is(err, errExited) {
			return err
		}
	}
	return err
}

// dialable reports whether something accepts connections on addr.
func dialable(addr string) func() error {
	return func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}
}
