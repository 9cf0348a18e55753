//go:build !linux

package metrics

// registerOS registers nothing: the process_* metrics come from /proc,
// and elsewhere only the go_* metrics RegisterProcess adds are portable.
func registerOS(*Registry) {}
