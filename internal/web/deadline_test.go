//go:build unix

package web

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWriteDeadlineCutsPipeliningClient: a client that pipelines requests
// for small pages and reads none of the answers must lose its connection
// once the server's socket buffers are full and WriteStall has passed,
// instead of holding a connection and a goroutine for ever. Without the
// writeDeadline middleware the failure guard fires.
func TestWriteDeadlineCutsPipeliningClient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(New(Options{WriteStall: 300 * time.Millisecond}))
	closed := make(chan struct{})
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			close(closed)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// 200,000 answers of ~150 bytes are far more than the kernel buffers:
	// the server blocks writing one of them. The client's write blocks too
	// once the server stops reading, and ends when the connection closes.
	go io.WriteString(conn, strings.Repeat("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 200000))

	guard := time.NewTimer(30 * time.Second) // failure guard only
	defer guard.Stop()
	select {
	case <-closed:
	case <-guard.C:
		t.Fatal("the server did not close the connection of a client that reads nothing within 30 s")
	}
}
