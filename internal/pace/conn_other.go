//go:build !linux

package pace

import (
	"errors"
	"net"
	"os"
)

// Hand is Linux-only (it needs sendfile at explicit offsets); elsewhere
// callers use Copy.
func (s *Stream) Hand(conn *net.TCPConn, f *os.File, off, n int64, done func(sent int64, err error)) error {
	s.Release()
	return errors.New("pace: hand-over needs Linux")
}

// CanHand reports whether Hand works on this system.
const CanHand = false

type fileTable struct{}
