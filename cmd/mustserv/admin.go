package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"mustserv/internal/config"
	"mustserv/internal/library"
	"mustserv/internal/pace"
	"mustserv/internal/scan"
	"mustserv/internal/stream"
)

// adminHost is what the admin pages change besides accounts: the
// configuration file and the running server it describes (web.Admin).
// A change is validated as the running configuration it would make
// (the file's settings with the environment, flags and command-line
// folders over them), written back atomically, then applied: libraries
// to the tree and the scanner, pacing to the pacer and the policies.
type adminHost struct {
	editor  *config.Editor
	overlay func(config.Config) (config.Config, error)
	tree    *library.Tree
	scanner *scan.Scanner
	pacer   *pace.Pacer
	pols    *policySet
	log     *slog.Logger

	mu      sync.Mutex // one Apply at a time
	running atomic.Pointer[config.Config]
}

func newAdminHost(src configSource, cfg config.Config, tree *library.Tree, scanner *scan.Scanner,
	pacer *pace.Pacer, pols *policySet, log *slog.Logger) *adminHost {
	a := &adminHost{editor: config.NewEditor(src.file), overlay: src.overlay, tree: tree, scanner: scanner,
		pacer: pacer, pols: pols, log: log}
	a.running.Store(&cfg)
	return a
}

// Config is the running configuration.
func (a *adminHost) Config() config.Config { return *a.running.Load() }

// Apply validates change, writes the file back and applies the result.
// A server started without a file gets one in its data folder, read at
// the next start.
func (a *adminHost) Apply(ctx context.Context, change func(*config.Config) error) (config.Config, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	edit := func(c *config.Config) error {
		if err := change(c); err != nil {
			return err
		}
		run, err := a.overlay(*c)
		if err != nil {
			return err
		}
		// A library must be a folder now, or the tree would refuse it
		// after the file was written.
		for _, l := range run.Libraries {
			if l.Remote() {
				// Reachable or not, it is served (and marked offline);
				// but it must be one the tree can open.
				if err := library.Check(l, library.Options{}); err != nil {
					return err
				}
				continue
			}
			if fi, err := os.Stat(l.Path); err != nil || !fi.IsDir() {
				return fmt.Errorf("library %q: %s is not a folder", l.Name, l.Path)
			}
		}
		return nil
	}
	var file config.Config
	var err error
	if _, serr := os.Stat(a.editor.Path()); errors.Is(serr, os.ErrNotExist) {
		// No file yet: start from the defaults.
		file = config.Default()
		if err = edit(&file); err != nil {
			return config.Config{}, &config.RefusedError{Err: err}
		}
		err = config.Save(a.editor.Path(), file)
	} else {
		file, err = a.editor.Edit(edit)
	}
	if err != nil {
		return config.Config{}, err
	}
	run, err := a.overlay(file)
	if err != nil {
		return config.Config{}, err // checked in edit: cannot happen
	}
	old := a.Config()
	if err := a.apply(old, run); err != nil {
		// The file is written; what did not apply does at the next start.
		a.log.Error("config saved but not applied: restart to apply it", "err", err)
		return config.Config{}, fmt.Errorf("saved, but not applied until a restart: %w", err)
	}
	a.running.Store(&run)
	a.log.Info("configuration changed by an admin", "file", a.editor.Path())
	return run, nil
}

// apply makes the running server follow run.
func (a *adminHost) apply(old, run config.Config) error {
	if !slices.Equal(old.Libraries, run.Libraries) {
		if err := a.tree.Configure(run.Libraries); err != nil {
			return err
		}
		a.scanner.SetLibraries(libraryRoots(run.Libraries))
	}
	a.pacer.SetLimits(run.Pace.Uplink.BytesPerSecond(), run.Pace.PerClient.BytesPerSecond(), run.Pace.OnFull == "queue")
	a.pols.set(run)
	return nil
}

// Streams lists the running paced streams.
func (a *adminHost) Streams() []pace.StreamInfo { return a.pacer.Streams() }

// StopStream ends one.
func (a *adminHost) StopStream(id string) bool { return a.pacer.Stop(id) }

// Rescan starts a scan of every library.
func (a *adminHost) Rescan() bool { return a.scanner.Start() }

// policySet is each library's pacing policy, replaced whole when the
// admin changes pacing or libraries (read by every stream, so lock-free).
type policySet struct {
	m atomic.Pointer[map[string]stream.Policy]
}

func newPolicySet(cfg config.Config) *policySet {
	p := &policySet{}
	p.set(cfg)
	return p
}

func (p *policySet) set(cfg config.Config) {
	m := map[string]stream.Policy{}
	for _, l := range cfg.Libraries {
		m[l.Name] = policyOf(cfg.PaceFor(l.Name))
	}
	p.m.Store(&m)
}

// of is the policy of library lib.
func (p *policySet) of(lib string) stream.Policy { return (*p.m.Load())[lib] }
