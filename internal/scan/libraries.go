package scan

import (
	"context"
	"errors"
	"maps"
	"slices"
)

// SetLibraries makes the scanner keep exactly these libraries (name →
// folder on disk) in the index from now on. Call it after the tree
// (library.Tree.Configure) serves the same set: a scan lists folders
// through the tree, and scans only libraries both have.
//
//   - A removed library's folders are no longer watched, and its items,
//     folders and row are deleted from the index before SetLibraries
//     returns (with the albums and artists derived again). A scan under
//     way stops listing and probing it, and what it found of it is never
//     written, so nothing of it comes back.
//   - A library added, or whose folder changed, is scanned by Serve after
//     the scan under way, if any (only those libraries, not a full scan),
//     and watched as it is listed. A moved library keeps its items: the
//     scan of the new folder keeps those it finds there unchanged, with
//     their IDs, and removes the rest; a scan under way of the old folder
//     writes nothing more. Without Serve, the next Run scans them.
//   - An unchanged library (same name and folder) is left as it is.
//
// Should deleting a removed library's items fail (the index's disk is
// full...), it is reported (Progress, log) and tried again at the next
// scan or SetLibraries; the scanner follows the new set anyway. Nothing
// is returned: the libraries changed either way, and the caller could
// only log it too.
func (s *Scanner) SetLibraries(roots map[string]string) {
	s.retry.forget(func(name string) bool { _, ok := roots[name]; return ok })
	// Not the caller's context: a removal half done because a request
	// went away would be done again later anyway.
	ctx := context.Background()
	s.gate.Lock()
	old := s.libs.Load()
	next := &libSet{gen: old.gen + 1, roots: make(map[string]*libRoot, len(roots))}
	var added, moved, removed []string
	for name, dir := range roots {
		r := old.roots[name]
		switch {
		case r != nil && r.path == dir:
			next.roots[name] = r
			continue
		case r == nil:
			added = append(added, name)
		default:
			moved = append(moved, name)
		}
		next.roots[name] = &libRoot{path: dir}
	}
	for name := range old.roots {
		if next.roots[name] == nil {
			removed = append(removed, name)
			s.removedAt[name] = next.gen
			s.unremoved[name] = true
		}
	}
	s.libs.Store(next)
	// After the Store: a pass adding a watch checks the set under the
	// watcher's lock, which drop takes.
	if w := s.watch.Load(); w != nil {
		for _, name := range slices.Concat(removed, moved) {
			w.drop(name)
		}
	}
	err := s.removeUnremoved(ctx, next)
	s.gate.Unlock()
	if err != nil {
		s.report("cannot delete a removed library from the index, will try again", "err", err)
	}

	slices.Sort(added)
	slices.Sort(moved)
	slices.Sort(removed)
	if len(added)+len(moved)+len(removed) > 0 {
		s.log.Info("libraries changed", "added", added, "moved", moved, "removed", removed)
	}
	if len(added)+len(moved) > 0 {
		s.mu.Lock()
		for _, name := range slices.Concat(added, moved) {
			s.pending[name] = true
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default: // Serve was woken already and has not taken pending yet
		}
	}
}

// removeUnremoved deletes from the index the removed libraries whose items
// are still there. s.gate must be held.
func (s *Scanner) removeUnremoved(ctx context.Context, libs *libSet) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(s.unremoved)) {
		// Added again before its deletion succeeded: its next scan
		// keeps or removes what the index holds, as after a move.
		if libs.roots[name] == nil {
			if err := s.opts.Index.RemoveLibrary(ctx, name); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		delete(s.unremoved, name)
	}
	return errors.Join(errs...)
}

// retryRemovals is removeUnremoved for a scan.
func (s *Scanner) retryRemovals(ctx context.Context) error {
	s.gate.Lock()
	defer s.gate.Unlock()
	return s.removeUnremoved(ctx, s.libs.Load())
}

// runPending scans the libraries SetLibraries added or moved that no scan
// has covered since.
func (s *Scanner) runPending(ctx context.Context) {
	s.mu.Lock()
	only := s.pending
	s.pending = map[string]bool{}
	s.mu.Unlock()
	if len(only) == 0 {
		return
	}
	s.runLogged(ctx, only)
}
