package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"mustserv/internal/auth"
	"mustserv/internal/config"
	"mustserv/internal/storage/s3"
)

// stateFile is the accounts database's name in the data directory.
const stateFile = "state.db"

// keyFileOf is where cfg keeps the signing keys.
func keyFileOf(cfg config.Config, dataDir string) string {
	if cfg.Auth.KeyFile != "" {
		return cfg.Auth.KeyFile
	}
	return filepath.Join(dataDir, "signing.keys")
}

// openAuth opens the accounts, the signing keys and the service over
// them; nil, nil when authentication is off. The store stays open for
// the life of the process. With auth.state_url the accounts are also
// kept in step with the S3 object there (auth.Remote): read every second
// until the service is closed, and written by every change, the
// `mustserv user` commands' included. log is nil for those commands:
// then what the replication has to say goes to stderr, and an object out
// of reach is an error (auth.ServiceOptions.ReplicaStrict) rather than a
// stale copy acted on.
func openAuth(ctx context.Context, cfg config.Config, dataDir string, log *slog.Logger) (*auth.Service, error) {
	if cfg.Auth.Mode == config.AuthNone {
		return nil, nil
	}
	path := cfg.Auth.StateFile
	if path == "" {
		path = filepath.Join(dataDir, stateFile)
	}
	store, err := auth.OpenStore(ctx, path)
	if err != nil {
		return nil, err
	}
	keys, err := auth.OpenKeyFile(keyFileOf(cfg, dataDir))
	if err != nil {
		store.Close()
		return nil, err
	}
	opts := auth.ServiceOptions{
		SessionTTL: time.Duration(cfg.Auth.SessionTTL),
		LinkTTL:    time.Duration(cfg.Auth.LinkTTL),
		KeyOverlap: time.Duration(cfg.Auth.KeyOverlap),
		Logger:     log,
	}
	var obj *s3.Object
	if cfg.Auth.StateURL != "" {
		u, err := url.Parse(cfg.Auth.StateURL) // validated by config
		if err == nil {
			// Empty keys: the AWS_ environment, as the s3 libraries.
			// A short timeout: every account change waits on this
			// object (auth bounds a change at 10 s in all).
			obj, err = s3.OpenObject(u, s3.Options{AccessKey: cfg.Auth.StateAccessKey, SecretKey: cfg.Auth.StateSecretKey,
				Timeout: 5 * time.Second})
		}
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("auth.state_url: %w", err)
		}
		opts.Replica, opts.ReplicaConflict, opts.ReplicaPoll = obj, s3.ErrPrecondition, time.Second
		if opts.Logger == nil {
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			opts.ReplicaStrict = true
		}
	}
	svc, err := auth.NewService(ctx, store, keys, opts)
	if err != nil {
		if obj != nil {
			obj.Close()
		}
		store.Close()
		if errors.Is(err, auth.ErrUnsynced) {
			// The object's name, never a credential.
			err = fmt.Errorf("auth.state_url %s: %w", obj, err)
		}
		return nil, err
	}
	return svc, nil
}

// userArgs parses a user subcommand's flags wherever they stand among
// its words ("add alice --role admin").
type userArgs struct {
	fset         *flag.FlagSet
	config, data string
	role         string
	libraries    multiFlag
	passwordFile string
	words        []string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func parseUserArgs(args []string, stderr io.Writer) (*userArgs, error) {
	u := &userArgs{fset: flag.NewFlagSet("user", flag.ContinueOnError)}
	f := u.fset
	f.SetOutput(stderr)
	f.StringVar(&u.config, "config", "", "configuration `file` (TOML)")
	f.StringVar(&u.data, "data", "", "data `dir`")
	f.StringVar(&u.role, "role", "", "`role`: admin, user or guest")
	f.Var(&u.libraries, "library", "a library the user may see (repeat); admins see all")
	f.StringVar(&u.passwordFile, "password-file", "", "read the password from the first line of `file` (- for stdin); else it is asked on the terminal")
	for {
		if err := f.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		if f.NArg() == 0 {
			return u, nil
		}
		u.words = append(u.words, f.Arg(0))
		args = f.Args()[1:]
	}
}

const userUsage = `usage:
  mustserv user add NAME [--role admin|user|guest] [--library NAME]... [--password-file FILE]
  mustserv user passwd NAME [--password-file FILE]
  mustserv user access NAME --role ROLE [--library NAME]...
  mustserv user del NAME
  mustserv user list
  mustserv user key add NAME LABEL     (prints the new API key once)
  mustserv user key list [NAME]
  mustserv user key del NAME ID
common flags: --config FILE, --data DIR`

// runUser manages accounts in the data directory's state.db; a running
// server notices the changes within a second.
func runUser(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	u, err := parseUserArgs(args, stderr)
	if err != nil {
		return err
	}
	if len(u.words) == 0 {
		fmt.Fprintln(stderr, userUsage)
		return usageError{"user: no subcommand"}
	}
	cfg := config.Default()
	if u.config != "" {
		if cfg, err = config.Load(u.config); err != nil {
			return err
		}
	}
	cfg.ApplyEnv(getenv)
	if u.data != "" {
		cfg.Server.DataDir = u.data
	}
	if u.config == "" {
		// As serve does: the data folder's own file, if the admin pages
		// wrote one (it may place the keys and accounts elsewhere).
		if dir, err := cfg.Server.ResolveDataDir(getenv); err == nil {
			if p := filepath.Join(dir, configFile); fileExists(p) {
				if cfg, err = config.Load(p); err != nil {
					return err
				}
				cfg.ApplyEnv(getenv)
				if u.data != "" {
					cfg.Server.DataDir = u.data
				}
			}
		}
	}
	cfg.Auth.Mode = "accounts" // the file is managed even if the server runs without
	// The data folder is needed only for what the config does not place.
	dataDir, err := cfg.Server.ResolveDataDir(getenv)
	if err != nil && (cfg.Auth.StateFile == "" || cfg.Auth.KeyFile == "") {
		return err
	}
	svc, err := openAuth(ctx, cfg, dataDir, nil)
	if err != nil {
		return err
	}
	defer svc.Close()
	words := u.words
	need := func(n int) error {
		if len(words) != n {
			fmt.Fprintln(stderr, userUsage)
			return usageError{fmt.Sprintf("user %s: wrong number of arguments", words[0])}
		}
		return nil
	}
	byName := func(name string) (auth.Account, error) {
		users, err := svc.Users(ctx)
		if err != nil {
			return auth.Account{}, err
		}
		for _, a := range users {
			if strings.EqualFold(a.Name, name) {
				return a, nil
			}
		}
		return auth.Account{}, fmt.Errorf("user %q: %w", name, auth.ErrNoUser)
	}
	switch words[0] {
	case "add":
		if err := need(2); err != nil {
			return err
		}
		role := auth.Role(u.role)
		if u.role == "" {
			role = auth.User
		}
		pw, err := readPassword(u.passwordFile, stderr)
		if err != nil {
			return err
		}
		a, err := svc.AddUser(ctx, words[1], pw, role, u.libraries)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "mustserv: user %s added (%s)\n", a.Name, a.Role)
	case "passwd":
		if err := need(2); err != nil {
			return err
		}
		a, err := byName(words[1])
		if err != nil {
			return err
		}
		pw, err := readPassword(u.passwordFile, stderr)
		if err != nil {
			return err
		}
		if err := svc.SetPassword(ctx, a.ID, pw); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "mustserv: password of %s changed; its sessions have ended\n", a.Name)
	case "access":
		if err := need(2); err != nil {
			return err
		}
		a, err := byName(words[1])
		if err != nil {
			return err
		}
		if u.role == "" {
			return usageError{"user access: --role is required"}
		}
		if err := svc.SetAccess(ctx, a.ID, auth.Role(u.role), u.libraries); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "mustserv: %s is now %s\n", a.Name, u.role)
	case "del":
		if err := need(2); err != nil {
			return err
		}
		a, err := byName(words[1])
		if err != nil {
			return err
		}
		if err := svc.DeleteUser(ctx, a.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "mustserv: user %s deleted\n", a.Name)
	case "list":
		if err := need(1); err != nil {
			return err
		}
		users, err := svc.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tLIBRARIES\tCREATED")
		for _, a := range users {
			libs := strings.Join(a.Libraries, ",")
			if a.Role == auth.Admin {
				libs = "(all)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.Name, a.Role, libs, a.Created.Format(time.DateOnly))
		}
		return tw.Flush()
	case "key":
		return runUserKey(ctx, svc, words[1:], byName, stdout, stderr)
	default:
		fmt.Fprintln(stderr, userUsage)
		return usageError{fmt.Sprintf("user: unknown subcommand %q", words[0])}
	}
	return nil
}

func runUserKey(ctx context.Context, svc *auth.Service, words []string, byName func(string) (auth.Account, error), stdout, stderr io.Writer) error {
	bad := func() error {
		fmt.Fprintln(stderr, userUsage)
		return usageError{"user key: add NAME LABEL | list [NAME] | del NAME ID"}
	}
	if len(words) == 0 {
		return bad()
	}
	switch {
	case words[0] == "add" && len(words) == 3:
		a, err := byName(words[1])
		if err != nil {
			return err
		}
		key, k, err := svc.AddAPIKey(ctx, a.ID, words[2])
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "mustserv: API key %s (%s) of %s; it is shown this once:\n", k.ID, k.Name, a.Name)
		fmt.Fprintln(stdout, key)
	case words[0] == "list" && len(words) <= 2:
		id, names := "", map[string]string{}
		users, err := svc.Users(ctx)
		if err != nil {
			return err
		}
		for _, a := range users {
			names[a.ID] = a.Name
		}
		if len(words) == 2 {
			a, err := byName(words[1])
			if err != nil {
				return err
			}
			id = a.ID
		}
		keys, err := svc.APIKeys(ctx, id)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tUSER\tLABEL\tCREATED\tLAST USED")
		for _, k := range keys {
			used := "never"
			if !k.Used.IsZero() {
				used = k.Used.Format(time.DateOnly)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, names[k.UserID], k.Name, k.Created.Format(time.DateOnly), used)
		}
		return tw.Flush()
	case words[0] == "del" && len(words) == 3:
		a, err := byName(words[1])
		if err != nil {
			return err
		}
		if err := svc.DeleteAPIKey(ctx, a.ID, words[2]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "mustserv: API key %s of %s deleted\n", words[2], a.Name)
	default:
		return bad()
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readPassword reads a password from the first line of file ("-" is
// stdin) or, without a file, asks twice on the terminal without echo.
func readPassword(file string, stderr io.Writer) (string, error) {
	if file != "" {
		var r io.Reader = os.Stdin
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return "", err
			}
			defer f.Close()
			r = f
		}
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", usageError{"no terminal to ask the password on: use --password-file FILE (or - for stdin)"}
	}
	defer tty.Close()
	in := bufio.NewReader(tty) // one reader: a pasted "pw\npw\n" is two answers
	ask := func(prompt string) (string, error) {
		fmt.Fprint(tty, prompt)
		defer fmt.Fprintln(tty)
		fd := int(tty.Fd())
		old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return "", err
		}
		noEcho := *old
		noEcho.Lflag &^= unix.ECHO
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
			return "", err
		}
		defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
		line, err := in.ReadString('\n')
		return strings.TrimRight(line, "\r\n"), err
	}
	pw, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	again, err := ask("Password again: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("the two passwords differ")
	}
	return pw, nil
}
