//go:build !linux

package scan

import "errors"

// notifier watches folders; only Linux has one here (inotify). Elsewhere
// changes show at the next periodic rescan.
type notifier struct{}

type event struct{ dir dirKey }

var errOverflow = errors.New("events were lost")

func newNotifier() (*notifier, error) {
	return nil, errors.New("watching folders is implemented for Linux only")
}

func (n *notifier) add(string, dirKey) error      { return nil }
func (n *notifier) len() int                      { return 0 }
func (n *notifier) close() error                  { return nil }
func (n *notifier) dropLibrary(string)            {}
func (n *notifier) read(func(event), func(error)) {}
