package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// PasswordOptions are argon2id's costs. The zero value gives OWASP's
// recommendation for argon2id (19 MiB, 2 passes, 1 lane): 28 ms a hash
// on this 2-core machine (BenchmarkHash), and 19 MiB per hash in
// progress, which MaxConcurrent bounds, so that a flood of logins can
// neither fill memory nor take every core.
type PasswordOptions struct {
	MemoryKiB     uint32
	Time          uint32
	Threads       uint8
	MaxConcurrent int // hashes computed at once; 0 means 2
}

func (o PasswordOptions) withDefaults() PasswordOptions {
	if o.MemoryKiB == 0 {
		o.MemoryKiB = 19 * 1024
	}
	if o.Time == 0 {
		o.Time = 2
	}
	if o.Threads == 0 {
		o.Threads = 1
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 2
	}
	return o
}

// Limits on the costs a stored hash may ask for: a tampered or foreign
// record must not make one check take a gigabyte or a minute.
const (
	maxMemoryKiB = 256 * 1024
	maxTime      = 16
	maxThreads   = 16
)

const (
	saltLen = 16
	hashLen = 32
)

// Passwords hashes and checks login passwords with argon2id, in the PHC
// string format ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"), so that
// hashes made with other costs keep working and can be told apart.
type Passwords struct {
	opts    PasswordOptions
	slots   chan struct{}
	dummy   string // a hash of nothing anyone knows, for CheckUnknown
	freeing atomic.Bool
}

// NewPasswords returns a Passwords with opts' costs.
func NewPasswords(opts PasswordOptions) *Passwords {
	opts = opts.withDefaults()
	p := &Passwords{opts: opts, slots: make(chan struct{}, opts.MaxConcurrent)}
	// The dummy's "hash" is random bytes, not a computed one: checking
	// against it costs the same, and no password matches it. Computing
	// one at start would leave argon2's 19 MiB in the idle server's
	// memory.
	p.dummy = phcString(opts, NewSecret()[:saltLen], NewSecret()[:hashLen])
	return p
}

// phcString is the stored form of a hash sum made with salt and opts.
func phcString(o PasswordOptions, salt, sum []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, o.MemoryKiB, o.Time, o.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum))
}

// ErrBadHash is a stored hash that cannot be read or asks for costs over
// the limits.
var ErrBadHash = errors.New("auth: unreadable password hash")

// Hash returns the stored form of password.
func (p *Passwords) Hash(ctx context.Context, password string) (string, error) {
	if err := p.acquire(ctx); err != nil {
		return "", err
	}
	defer p.release()
	salt := make([]byte, saltLen)
	rand.Read(salt)
	return p.encode(salt, []byte(password)), nil
}

func (p *Passwords) encode(salt, password []byte) string {
	o := p.opts
	return phcString(o, salt, argon2.IDKey(password, salt, o.Time, o.MemoryKiB, o.Threads, hashLen))
}

// Check reports whether password matches the stored hash, and whether the
// hash should be made again with the current costs (after a successful
// login, when the costs were raised).
func (p *Passwords) Check(ctx context.Context, stored, password string) (ok, rehash bool, err error) {
	h, err := parsePHC(stored)
	if err != nil {
		return false, false, err
	}
	if err := p.acquire(ctx); err != nil {
		return false, false, err
	}
	defer p.release()
	sum := argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, uint32(len(h.sum)))
	ok = subtle.ConstantTimeCompare(sum, h.sum) == 1
	o := p.opts
	rehash = ok && (h.memory != o.MemoryKiB || h.time != o.Time || h.threads != o.Threads)
	return ok, rehash, nil
}

// CheckUnknown does the work of a Check for a user who does not exist and
// reports false, so that an unknown name and a wrong password take the
// same time (no way to find out which names exist).
func (p *Passwords) CheckUnknown(ctx context.Context, password string) error {
	_, _, err := p.Check(ctx, p.dummy, password)
	return err
}

func (p *Passwords) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release ends a hash. When none is left running, the memory argon2 took
// (19 MiB a hash) is given back to the system: an idle server does not
// allocate, so no collection would come to free it, and its resident
// memory would stay 20-40 MB higher after one login (measured).
func (p *Passwords) release() {
	<-p.slots
	if len(p.slots) == 0 && p.freeing.CompareAndSwap(false, true) {
		go func() {
			defer p.freeing.Store(false)
			debug.FreeOSMemory()
		}()
	}
}

type phc struct {
	memory, time uint32
	threads      uint8
	salt, sum    []byte
}

func parsePHC(s string) (phc, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" || f[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, ErrBadHash
	}
	var h phc
	for _, kv := range strings.Split(f[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return phc{}, ErrBadHash
		}
		switch k {
		case "m":
			h.memory = uint32(n)
		case "t":
			h.time = uint32(n)
		case "p":
			if n > maxThreads {
				return phc{}, ErrBadHash
			}
			h.threads = uint8(n)
		default:
			return phc{}, ErrBadHash
		}
	}
	if h.memory == 0 || h.time == 0 || h.threads == 0 || h.memory > maxMemoryKiB || h.time > maxTime ||
		h.memory < 8*uint32(h.threads) {
		return phc{}, ErrBadHash
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(f[4]); err != nil || len(h.salt) < 8 {
		return phc{}, ErrBadHash
	}
	if h.sum, err = base64.RawStdEncoding.Strict().DecodeString(f[5]); err != nil || len(h.sum) < 16 || len(h.sum) > 64 {
		return phc{}, ErrBadHash
	}
	return h, nil
}
