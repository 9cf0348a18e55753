package pace

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Hand passes the rest of s's body to the Pacer's loop: n bytes of f from
// offset off go to conn, which then belongs to the loop (it closes conn
// when the body is sent, the client leaves or takes nothing for
// Options.Stall). The caller keeps f and may close it at once: the loop
// sends from a descriptor it shares among all streams of the same file.
// On error conn is closed and s released.
//
// done, if not nil, is called from the loop when the stream ends, with the
// bytes sent and nil, or the error that ended it.
func (s *Stream) Hand(conn *net.TCPConn, f *os.File, off, n int64, done func(sent int64, err error)) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		s.Release()
		return err
	}
	sf, err := s.p.files.get(f)
	if err != nil {
		conn.Close()
		s.Release()
		return err
	}
	// Deadlines set while the connection was net/http's would cut the
	// stream; the loop sets its own while it waits.
	conn.SetDeadline(time.Time{})
	out := &sendfileSink{conn: conn, raw: raw, file: sf, files: &s.p.files, off: off}
	if err := raw.Control(func(fd uintptr) { out.sock = int(fd) }); err != nil {
		out.close()
		s.Release()
		return err
	}
	return s.handTo(out, n, done)
}

// CanHand reports whether Hand works on this system.
const CanHand = true

// sendfileSink sends a stream's file to its socket with sendfile(2) at an
// explicit offset, so one descriptor serves every stream of a file.
type sendfileSink struct {
	conn        *net.TCPConn
	raw         syscall.RawConn
	sock        int
	file        *sharedFile
	files       *fileTable
	off         int64
	interrupted atomic.Bool
}

func (s *sendfileSink) send(n int64) (int64, error) {
	for {
		m, err := unix.Sendfile(s.sock, s.file.fd, &s.off, int(n))
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return int64(max(m, 0)), errAgain
		case err != nil:
			return int64(max(m, 0)), err
		case m == 0:
			return 0, fmt.Errorf("send body: %w", io.ErrUnexpectedEOF) // the file shrank
		}
		return int64(m), nil
	}
}

func (s *sendfileSink) await(n int64, stall time.Duration) (int64, error) {
	if s.interrupted.Load() {
		return 0, errInterrupted
	}
	var m int64
	var serr error
	queued := s.unsent()
	idle := 0
	for {
		s.conn.SetWriteDeadline(time.Now().Add(stall))
		// An interrupt between the check above and this deadline set its
		// past deadline first, which ours has just replaced: look again.
		if s.interrupted.Load() {
			return m, errInterrupted
		}
		err := s.wait(n, &m, &serr)
		if s.interrupted.Load() {
			return m, errInterrupted
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The kernel reports the socket writable only once a
			// third of its buffer is free, which a slow client
			// (a phone on a bad link) may take longer than stall to
			// read: only a client that took nothing is cut. And a
			// slow reader with a small receive buffer opens its
			// window in steps (TCP avoids tiny window updates), as
			// seldom as once a stall: so, as for unpaced bodies,
			// the cut comes within two stalls of its last read.
			q := s.unsent()
			if q >= 0 && q < queued {
				queued, idle = q, 0
				continue
			}
			if idle++; idle < 2 {
				continue
			}
		}
		if err != nil {
			return m, err
		}
		return m, serr
	}
}

// unsent returns how many bytes wait in the socket's send queue, -1 when
// it cannot tell.
func (s *sendfileSink) unsent() int {
	q := -1
	s.raw.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
			q = v
		}
	})
	return q
}

// wait sends up to n bytes once the socket takes some.
func (s *sendfileSink) wait(n int64, m *int64, serr *error) error {
	// The send happens inside Write's callback, after the poller's
	// readiness was reset: a socket that drained between the loop's
	// failed send and now is seen, not waited for.
	return s.raw.Write(func(fd uintptr) bool {
		k, err := unix.Sendfile(int(fd), s.file.fd, &s.off, int(n))
		if err == unix.EAGAIN || err == unix.EINTR {
			if k > 0 {
				*m = int64(k)
				return true
			}
			return false
		}
		*m, *serr = int64(max(k, 0)), err
		if err == nil && k == 0 {
			*serr = fmt.Errorf("send body: %w", io.ErrUnexpectedEOF)
		}
		return true
	})
}

func (s *sendfileSink) interrupt() {
	s.interrupted.Store(true)
	s.conn.SetWriteDeadline(time.Unix(1, 0))
}

func (s *sendfileSink) close() {
	s.conn.Close()
	s.files.put(s.file)
}

// fileTable shares one open descriptor per file (device and inode) among
// the streams sending it: with 10,000 streams of a few files the process
// stays far below its open-files limit.
type fileTable struct {
	mu sync.Mutex
	m  map[fileKey]*sharedFile
}

type fileKey struct{ dev, ino uint64 }

type sharedFile struct {
	key  fileKey
	fd   int
	refs int
}

// get returns the shared descriptor of f's file, duplicating f's when
// there is none yet.
func (t *fileTable) get(f *os.File) (*sharedFile, error) {
	var st unix.Stat_t
	var fd int
	var serr error
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	err = rc.Control(func(u uintptr) {
		fd = int(u)
		serr = unix.Fstat(fd, &st)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("stat body: %w", err)
	}
	key := fileKey{uint64(st.Dev), st.Ino}
	t.mu.Lock()
	defer t.mu.Unlock()
	if sf := t.m[key]; sf != nil {
		sf.refs++
		return sf, nil
	}
	var dup int
	err = rc.Control(func(u uintptr) { dup, serr = unix.FcntlInt(u, unix.F_DUPFD_CLOEXEC, 0) })
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("share body: %w", err)
	}
	if t.m == nil {
		t.m = map[fileKey]*sharedFile{}
	}
	sf := &sharedFile{key: key, fd: dup, refs: 1}
	t.m[key] = sf
	return sf, nil
}

func (t *fileTable) put(sf *sharedFile) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sf.refs--
	if sf.refs == 0 {
		delete(t.m, sf.key)
		unix.Close(sf.fd)
	}
}

// open counts the descriptors the table holds.
func (t *fileTable) open() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
