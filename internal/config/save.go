package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
)

// RefusedError is a change that Save or Edit would not write: the config
// it makes does not validate, cannot be written as TOML, or the change
// function failed. Nothing was written. Its message is the reason alone
// (Validate's names the setting), fit to show the admin who asked; the
// caller knows which file it was.
type RefusedError struct{ Err error }

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// tempInfix names Save's temporary files: path's base name, this, then
// os.CreateTemp's decimal random number. Save removes files so named that
// a killed save left behind.
const tempInfix = ".tmp-"

// Save writes c to the TOML file at path so that Load(path) returns c.
// An invalid c is refused (*RefusedError) and nothing is touched.
//
// The whole file is rewritten: go-toml cannot keep the comments and
// layout of a hand-written file, so they are lost (the header of the new
// file says so). Every key is written, defaults included: a default that
// a later release changes no longer reaches a saved file.
//
// A crash or kill -9 at any moment leaves path holding either the old or
// the new config, never a mix: the new bytes go to a temporary file in
// the same folder, which is fsynced and renamed over path. The previous
// file is kept as path.bak, itself replaced the same way before path is,
// so neither is ever missing or torn. A save that changes no byte touches
// nothing, so .bak keeps the last real change. The file keeps its
// permission bits (new files get 0600: the config names key files);
// owner and group are the writer's. When path is a symlink its target is
// written and the link is kept.
//
// Save assumes one writer per file: it removes the temporary files a
// killed save left, and also any a concurrent save in another process is
// writing, which then fails rather than writes. In one process, serialise
// with an Editor.
func Save(path string, c Config) error {
	if err := c.Validate(); err != nil {
		return &RefusedError{Err: err}
	}
	target := path
	if p, err := filepath.EvalSymlinks(path); err == nil {
		target = p
	}
	data, err := encode(target, c)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(target)
	exists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("save config: %w", err)
	case bytes.Equal(old, data):
		return nil
	}
	mode := fs.FileMode(0o600)
	if exists {
		fi, err := os.Stat(target)
		if err != nil {
			return fmt.Errorf("save config: %w", err)
		}
		mode = fi.Mode().Perm()
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	if err := removeStaleTemps(dir, base); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	// .bak first: between the two renames both files hold the old config.
	// The other way round, a kill between them would leave the new config
	// in path, a .bak one version older, and the old config nowhere.
	if exists {
		if err := replace(dir, base, target+".bak", old, mode); err != nil {
			return fmt.Errorf("save config: keep previous: %w", err)
		}
	}
	if err := replace(dir, base, target, data, mode); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	// The renames are entries of dir: without this they may not survive a
	// power cut even though the files' contents do. (An error here comes
	// after the new config is in place.)
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// encode returns the file Save writes for c at path: a header, then c as
// TOML. It refuses a config that Parse would not read back as c.
func encode(path string, c Config) ([]byte, error) {
	// go-toml writes a byte that is not UTF-8 as the escape \u00XX, which
	// reads back as another character: another path.
	if key := invalidUTF8(reflect.ValueOf(c), ""); key != "" {
		return nil, &RefusedError{Err: fmt.Errorf("%s is not valid UTF-8, which a TOML file cannot hold", key)}
	}
	var b bytes.Buffer
	b.WriteString(header(filepath.Base(path)))
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	// A check, not a formality: the encoder has lost values before
	// (invalid UTF-8 above). Only a file that loads as c may be written.
	back, err := Parse(path, b.Bytes())
	if err != nil {
		// Validate allows a few values the file's syntax cannot hold (a
		// bitrate over 1e15 bit/s); they are the caller's to change.
		return nil, &RefusedError{Err: fmt.Errorf("the config cannot be written as TOML: %w", err)}
	}
	if !reflect.DeepEqual(sameEmpty(back), sameEmpty(c)) {
		return nil, errors.New("encode config: the encoded file does not load as the config it was made from")
	}
	return b.Bytes(), nil
}

// header starts every file Save writes.
func header(base string) string {
	bak := base + ".bak"
	if !utf8.ValidString(bak) || strings.ContainsFunc(bak, unicode.IsControl) {
		bak = "the file named like this one with .bak appended"
	}
	return "# Written by mustserv, which rewrites the whole file on every change it\n" +
		"# saves: comments and layout are not kept. The version before the last\n" +
		"# change, if there was one, is in " + bak + ".\n\n"
}

// sameEmpty turns nil slices into empty ones: they are the same setting,
// and Parse gives empty ones.
func sameEmpty(c Config) Config {
	if c.Server.TrustedProxies == nil {
		c.Server.TrustedProxies = []string{}
	}
	if c.Libraries == nil {
		c.Libraries = []Library{}
	}
	return c
}

// invalidUTF8 returns the TOML key (as Validate spells keys:
// "library[2].path") of the first string in v that is not valid UTF-8,
// or "".
func invalidUTF8(v reflect.Value, key string) string {
	switch v.Kind() {
	case reflect.String:
		if !utf8.ValidString(v.String()) {
			return key
		}
	case reflect.Pointer:
		if !v.IsNil() {
			return invalidUTF8(v.Elem(), key)
		}
	case reflect.Slice:
		for i := range v.Len() {
			if k := invalidUTF8(v.Index(i), fmt.Sprintf("%s[%d]", key, i)); k != "" {
				return k
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
			if key != "" {
				name = key + "." + name
			}
			if k := invalidUTF8(v.Field(i), name); k != "" {
				return k
			}
		}
	}
	return ""
}

// replace atomically replaces dst with data: a temporary file in dir,
// fsynced, renamed over dst.
func replace(dir, base, dst string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(dir, base+tempInfix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp) // best effort; the next save removes it too
		return err
	}
	return nil
}

// removeStaleTemps removes the temporary files of saves of base that were
// killed before their rename. Only os.CreateTemp's own names (decimal
// digits after the infix) are touched, so "mustserv.toml.tmp-notes" stays.
func removeStaleTemps(dir, base string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !isTemp(base, e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// isTemp reports whether name is one of Save's temporary files for base.
func isTemp(base, name string) bool {
	rest, ok := strings.CutPrefix(name, base+tempInfix)
	if !ok || rest == "" {
		return false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Edit loads the config file at path (strictly, as Load: the file alone,
// without MUSTSERV_* variables or flags), applies change, and saves the
// result (see Save) if it validates. It returns the new config.
//
// When change returns an error or makes an invalid config, the file is
// left byte for byte as it was and the error is a *RefusedError carrying
// the reason. Any other error is a failure to read or write the file.
//
// Edit does not serialise: two concurrent Edits of one file may each load
// the old config, and one's change is lost. Use an Editor.
func Edit(path string, change func(*Config) error) (Config, error) {
	c, err := Load(path)
	if err != nil {
		return Config{}, err
	}
	if err := change(&c); err != nil {
		return Config{}, &RefusedError{Err: err}
	}
	if err := Save(path, c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Editor serialises the Edits of one config file made by one process,
// for example by concurrent admin requests, so that none is lost. It is
// a value its owner passes down rather than a registry by path: two
// Editors of one file do not know of each other, and nor do two
// processes (see Save).
type Editor struct {
	path string
	mu   sync.Mutex
}

// NewEditor returns the Editor of the config file at path.
func NewEditor(path string) *Editor { return &Editor{path: path} }

// Path is the file the Editor edits.
func (e *Editor) Path() string { return e.path }

// Edit is Edit of the Editor's file, after any Edit in progress ends.
func (e *Editor) Edit(change func(*Config) error) (Config, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Edit(e.path, change)
}
