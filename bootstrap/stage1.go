package bootstrap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ReadyLine is what a child started in stdio mode writes first, so the
// master knows stage 1 has exec'd it and the stream can begin.
const ReadyLine = "MITOGO-READY"

// EnvVerify carries the expected sha256 of a freshly uploaded binary; the
// child checks itself against it before serving, and removes itself on a
// mismatch.
const EnvVerify = "MITOGO_VERIFY"

// stage1 is the POSIX sh program the far side runs (dash, bash and busybox
// ash all run it). It talks in lines on stdout and reads lines on stdin:
//
//	-> MITOGO1 <uname -s> <uname -m> <cache dir>
//	-> builds [<sha256 of a cached build>...]
//	   (a guess, sent before stage 1 spoke:) <- <sha256> guess <k>
//	                <uname -s> <uname -m>, then k bytes for the child;
//	                when the platform is the one guessed and the build
//	                is cached: -> guessed, and the child is exec'd (it
//	                reads the k bytes first); else stage 1 drains the k
//	                bytes, -> want, and goes on with the next line
//	<- <sha256 of the binary for that platform> [nocache|delta|fresh]
//	   (fresh: the cached build with that hash failed to start: stage 1
//	   removes it, unless sha256sum finds it whole, and goes on as when
//	   it had none; a whole build is run again, and fails again for
//	   what kept it from starting, with no upload)
//	   (delta:)     <- <byte count> <base> then that many bytes of delta
//	                against the cached build base (see delta.go), sent
//	                with the hash: stage 1 reads it after need (or drains
//	                it when it has the binary after all)
//	-> got (at once: the master times the round trip)
//	-> have | need <decoders> <pieces|whole>
//	   (need, after a delta:) -> patched, or need when it did not apply
//	                (then as need without a delta)
//	   (need, a delta now:) <- <byte count> <base> and the delta, as
//	                above; -> patched, or need
//	   (need, a compressed form:) <- <byte count> - <xz|zstd|gz> then
//	                the whole stream in that format (see forms.go)
//	   (need, gz, pieces:) <- <byte count> then that many bytes of gzip,
//	                repeated; <- 0 at the end. The pieces are one gzip stream.
//	   (need, gz, whole:)  <- <byte count> then the whole gzip stream
//	   (need, -:)   <- <byte count> then the binary
//	   exec the binary with MITOGO_CHILD=stdio on the same stdin/stdout
//
// decoders lists, joined by commas, the formats the far side can unpack:
// gz (gzip), xz (XZ Utils' xz, whose x86 filter the master may use) and
// zstd; "-" first when it has no gzip. They, and whether its head reads no
// more than asked (pieces), matter only to an upload: stage 1 finds them
// out after it found no cached build, so a cached connect runs no xz
// --version nor head --version (a process each, some 1 ms); a delta sent
// with the hash is on its way while it looks (they run with stdin from
// /dev/null: the delta waits in the stream for stage 1).
//
// builds lists the builds in the cache (by a glob: no process, while
// stage 1 waits for the hash anyway), so that the master, which orders
// them by its own last use of each, can send a delta with the hash: after
// a rebuild the delta takes no round trip more than a cached connect. The
// master sends the delta with the hash only when it has one at hand (kept,
// or made by its zstd tool, see delta.go); otherwise, after need, it may
// make one for a far link (the round trip then tells). When it lists
// none, the master sends the whole binary. A delta is applied by
// the base itself, run as the patcher (MITOGO_CHILD=patch) as soon as the
// delta's line arrives: head -c feeds it the delta as it comes, so its
// start and its reading of the base overlap the transfer, and what a
// patcher that failed left unread is drained, so the stream stays in step
// (one that succeeded read it to its end). It writes the temporary name a
// fresh upload gets (made executable before) and exits 0 only once the
// result's sha256 is the one asked for; stage 1 then renames the result into the
// cache and runs it from there with MITOGO_INSTALL=installed (the child
// prunes the cache, without hashing itself again). A base that fails sends
// stage 1 back to need. A cached build found, or a
// base used, is touched first: its modification time is its last use,
// which the cache's pruning goes by (see cachedir.go).
//
// Pieces need a head -c that reads no more than it is asked (GNU's);
// busybox's reads ahead through stdio and would eat the next piece's
// length, so without GNU head the gzip stream goes whole, after it is all
// compressed. A fresh upload is exec'd from its temporary name: the child
// checks its own hash (MITOGO_VERIFY) and only then renames itself into the
// cache (MITOGO_INSTALL=cache) or removes itself (nocache), so a truncated
// or corrupt upload never lands in the cache. On a terminal (su, doas)
// stage 1 first makes it raw again, in case a login profile ran stty.
// The cache in $HOME is used only when $HOME is the user's own (su -m
// keeps the caller's HOME).
//
// A cache directory removed while stage 1 works in it (by another process,
// between the listing and the upload) leaves it nowhere to write: before it
// answers need, and again where a write fails, stage 1 creates the upload's
// temporary file (W) and, when it cannot, reads what the master sends
// already (a delta) and fails with MITOGO1-ERROR cache-gone <dir>
// (ErrCacheGone); the next connect makes the directory anew.
//
// The binary lands in ${XDG_CACHE_HOME:-$HOME/.cache}/mitogo/<sha256>, or a
// private directory under /tmp when home is not writable; it is written to a
// temporary name and renamed by the child once verified, so parallel
// bootstraps never see half a file.
// The cache directory must be ours and not a symlink (in sticky /tmp no one
// else can then replace it); the script works in it by relative paths, and
// a truncated upload is never renamed into place.
// `read` takes its line byte by byte from a pipe, and `head -c` reads no
// more than it is asked, so nothing of the stream is eaten. The child
// starts where the shell did (home, over SSH) with the shell's umask.
const stage1 = `O=$PWD; U=$(umask); umask 077
[ -t 0 ] && stty raw -echo 2>/dev/null
D=${XDG_CACHE_HOME:-$HOME/.cache}/mitogo
if ! { [ -O "$HOME" ] && { [ -d "$D" ] || mkdir -p "$D"; } && [ -w "$D" ] && [ -O "$D" ]; } 2>/dev/null; then
D=/tmp/mitogo-$(id -u); mkdir "$D" 2>/dev/null
fi
if [ -h "$D" ] || ! [ -O "$D" ] || ! cd "$D" 2>/dev/null; then echo "MITOGO1-ERROR cache directory $D is not ours"; exit 1; fi
chmod 700 .
Y=$(uname -s -m); echo "MITOGO1 $Y $D"
L=; for f in *; do case $f in *[!0-9a-f]*) ;; *) [ ${#f} -eq 64 ] && L="$L $f";; esac; done
echo "builds$L"
read H M S || exit 1
if [ "$M" = guess ]; then K=${S%% *}
case $K in *[!0-9]*|"") echo "MITOGO1-ERROR bad size"; exit 1;; esac
case $H in *[!0-9a-f]*|"") echo "MITOGO1-ERROR bad hash"; exit 1;; esac
touch -c "./$H" 2>/dev/null
if [ "${S#* }" = "$Y" ] && [ -f "./$H" ] && [ -x "./$H" ] && ! [ -h "./$H" ]; then
echo guessed; cd "$O" 2>/dev/null || cd; umask "$U"; MITOGO_CHILD=stdio exec "$D/$H"
fi
[ "$K" = 0 ] || head -c "$K" >/dev/null; echo want; read H M || exit 1
fi
echo got
case $H in *[!0-9a-f]*|"") echo "MITOGO1-ERROR bad hash"; exit 1;; esac
if [ "$M" = fresh ]; then M=; case $(sha256sum <"./$H" 2>/dev/null) in "$H "*) ;; *) rm -f "./$H";; esac; fi
[ "$M" != nocache ] && touch -c "./$H" 2>/dev/null
if [ "$M" != nocache ] && [ -f "./$H" ] && [ -x "./$H" ] && ! [ -h "./$H" ]; then
if [ "$M" = delta ]; then read N B C || exit 1; case $N in *[!0-9]*|"") echo "MITOGO1-ERROR bad size"; exit 1;; esac; head -c "$N" >/dev/null; fi
echo have; cd "$O" 2>/dev/null || cd; umask "$U"; MITOGO_CHILD=stdio exec "$D/$H"
fi
T=./$H.$$.tmp
W() { { true >"$T"; } 2>/dev/null || { echo "MITOGO1-ERROR cache-gone $D"; exit 1; }; }
G=-; command -v gzip >/dev/null 2>&1 && G=gz
Z=$G; case $(xz --version </dev/null 2>/dev/null) in *"XZ Utils"*) Z=$Z,xz;; esac
command -v zstd >/dev/null 2>&1 && Z=$Z,zstd
P=whole; head --version </dev/null 2>/dev/null | grep -q GNU && P=pieces
W; echo "need $Z $P"
read N B C || exit 1
if [ -n "$B" ] && [ "$B" != - ]; then
case $N in *[!0-9]*|"") echo "MITOGO1-ERROR bad size"; exit 1;; esac
case $B in *[!0-9a-f]*) echo "MITOGO1-ERROR bad hash"; exit 1;; esac
touch -c "./$B" 2>/dev/null
if [ -f "./$B" ] && [ -x "./$B" ] && ! [ -h "./$B" ] && { true >"$T"; } 2>/dev/null && chmod 700 "$T"; then
if head -c "$N" | ( MITOGO_CHILD=patch MITOGO_VERIFY=$H "$D/$B" >"$T"; R=$?; [ $R = 0 ] || cat >/dev/null; exit $R ) && mv -f "$T" "./$H"; then N=patched; else N=; rm -f "$T"; fi
else head -c "$N" >/dev/null; N=; fi
if [ -n "$N" ]; then echo patched; cd "$O" 2>/dev/null || cd; umask "$U"; MITOGO_CHILD=stdio MITOGO_INSTALL=installed exec "$D/$H"; fi
W; echo need; read N B C || exit 1
fi
case $N in *[!0-9]*|"") echo "MITOGO1-ERROR bad size"; exit 1;; esac
if [ "$C" = xz ]; then head -c "$N" | xz -dc >"$T"
elif [ "$C" = zstd ]; then head -c "$N" | zstd -dcq >"$T"
elif [ "$C" = gz ] || { [ $G = gz ] && [ $P != pieces ]; }; then head -c "$N" | gzip -dc >"$T"
elif [ $G = gz ]; then { while [ "$N" != 0 ]; do head -c "$N" || exit 1; read N && case $N in *[!0-9]*|"") exit 1;; esac || exit 1; done; } | gzip -dc >"$T"
else head -c "$N" >"$T" && [ "$(wc -c <"$T")" -eq "$N" ]; fi || { W; rm -f "$T"; echo "MITOGO1-ERROR upload incomplete"; exit 1; }
chmod 700 "$T" || { rm -f "$T"; exit 1; }
cd "$O" 2>/dev/null || cd; umask "$U"
MITOGO_CHILD=stdio MITOGO_VERIFY=$H MITOGO_INSTALL=${M:-cache} exec "$D/${T#./}"
`

// Stage1 returns the stage 1 program, to be run as `sh -c PROGRAM`. It is
// one line: sudo -i quotes a command for the login shell with backslashes,
// and a backslash before a newline would join lines.
func Stage1() string { return stage1Line() }

// Stage1Plain returns stage 1 as a command with no "$", no newline and no
// single quote of its own: it prints the program with printf's octal escapes
// and evaluates it. sudo -i hands its command to the login shell with every
// character but letters, digits, "_", "-" and "$" backslash-escaped, so a
// "$" in the program would be expanded there, too early.
func Stage1Plain() string {
	var b strings.Builder
	b.WriteString("eval \"`printf '")
	line := stage1Line()
	for i := 0; i < len(line); i++ {
		fmt.Fprintf(&b, "\\%03o", line[i])
	}
	b.WriteString("'`\"")
	return b.String()
}

// stage1Line is stage1 on one line: a newline ends a command (";") unless
// the line ends in a word or operator that continues it. It is made on
// first use, not at package init: every child pays for its package init
// before it can answer its parent, and only a parent running stage 1 needs
// the line.
var stage1Line = sync.OnceValue(func() string { return oneLine(stage1) })

func oneLine(script string) string {
	var b strings.Builder
	for _, l := range strings.Split(script, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(l)
		continues := false
		for _, w := range []string{"then", "else", "do", "{", "|", "&&", "||"} {
			if l == w || strings.HasSuffix(l, " "+w) {
				continues = true
			}
		}
		if !continues {
			b.WriteByte(';')
		}
	}
	return b.String()
}

// Provider returns the binary to run on a platform ("linux/arm64") other
// than this program's own, or nil when there is none.
type Provider func(platform string) (*Binary, error)

// Result is what stage 1 reported and did.
type Result struct {
	Platform string // GOOS/GOARCH of the far side
	CacheDir string // the far side's cache directory, as stage 1 chose it
	Uploaded bool   // the binary was sent
	Delta    string // the cached build it was sent as a delta against, if it was
	Form     string // the compressed form sent whole (xz, zstd, gz; see forms.go), if one was
	Sent     int64  // bytes of binary sent (of a delta that did not apply, too)

	Guessed  bool          // Options.Guess was right: the build ran at once, Options.Early went to it
	RTT      time.Duration // the round trip of a line to stage 1 and back (none when Guessed)
	Probe    time.Duration // from the start until the far side said whether it has the binary
	Transfer time.Duration // from then until the child announced itself (the upload, if any)
	// When a delta was sent: finding (or computing) it, and from the
	// hash's write (which a delta at hand follows at once) until the far
	// side said it applied (its transfer and the patcher's work); the rest
	// of Transfer is the new build's start.
	DeltaFound, Patched time.Duration
}

// PlatformError reports a far side for which no binary is available.
type PlatformError struct {
	Platform string // GOOS/GOARCH of the far side
}

// Error says the platform and how to give a binary for it.
func (e *PlatformError) Error() string {
	return fmt.Sprintf("remote is %s; no binary for it (give the connection a binary provider)", e.Platform)
}

// Options change how Run bootstraps.
type Options struct {
	// NoCache sends the binary every time, to run from a temporary file
	// that the child removes as soon as it starts.
	NoCache bool
	// Sending, when set, is called just before the binary is sent, with
	// the far side's platform and cache directory and the binary's size:
	// on a slow link first contact takes a while, and a user should know.
	Sending func(platform, cacheDir string, size int64)
	// Progress, when set, is called as the binary (or a delta) is sent,
	// every 64 KiB, with the bytes sent and an estimate of the total.
	Progress func(sent, total int64)
	// Guess sends this program's hash at once, before stage 1 speaks, with
	// its platform (as uname says it): a far side of that platform that has
	// the build cached runs it without waiting for the hash, one round trip
	// sooner. Only where the far side's standard input reaches stage 1
	// untouched: not through a terminal (su, doas), where a password
	// prompt may read or discard it.
	Guess bool
	// Early, with Guess, is what the child reads first when the guess is
	// right (the master's Hello, which then takes no round trip of its
	// own); stage 1 drains it when the guess is wrong. Result.Guessed says
	// which.
	Early []byte
	// Fresh replaces the far side's cached build of this hash, which
	// failed to start (Run's error matched ErrCachedBuildFailed): it is
	// removed and sent again. No guess is made.
	Fresh bool
	// NoForms keeps an upload from starting the background job that
	// makes the binary's smaller form for the next uploads (forms.go).
	NoForms bool

	formNice string        // the background job's niceness (default "19"); tests raise its priority
	uname    string        // the guess's platform (default this machine's); tests guess wrong
	nearRTT  time.Duration // NearRTT unless set; tests make every link far with a negative one
}

// NearRTT is the round trip to stage 1 below which the far side is taken
// to be near (the same host, a LAN): there a compressed form is neither
// sent nor made (see forms.go), as the pipelined gzip pieces arrive sooner.
const NearRTT = 10 * time.Millisecond

// Run speaks stage 1 on rw, the standard input and output of `sh -c
// Stage1()` on the far side: it learns the platform, sends the binary if
// the far side lacks it, and returns once the child announced itself.
// Whatever the far side printed that was not protocol is in the error.
// ctx bounds the work Run does on this side (computing a delta); the
// caller ends reads and writes on rw when ctx ends (a deadline on the
// connection).
func Run(ctx context.Context, rw io.ReadWriter, self *Binary, provider Provider, opts Options) (Result, error) {
	var res Result
	began := time.Now()
	guess := opts.Guess && !opts.NoCache && !opts.Fresh
	if guess {
		// A far side that ended already (a refusal) fails this write;
		// the read below then says what it printed, and how it ended.
		_ = writeGuess(rw, self.Hash, cmp.Or(opts.uname, ownUname()), opts.Early)
	}
	line, junk, err := readUntil(rw, func(l string) bool { return strings.HasPrefix(l, "MITOGO1") })
	if err != nil {
		return res, fmt.Errorf("stage 1 did not start: %w%s", err, said(junk))
	}
	f := strings.SplitN(line, " ", 4) // the cache directory last: it may hold spaces
	if f[0] != "MITOGO1" || len(f) < 4 {
		return res, stage1Error(line)
	}
	res.Platform, res.CacheDir = platform(f[1], f[2]), f[3]
	listed, junk, err := readUntil(rw, func(l string) bool {
		return l == "builds" || strings.HasPrefix(l, "builds ") || strings.HasPrefix(l, "MITOGO1-ERROR")
	})
	if err != nil {
		return res, fmt.Errorf("stage 1: %w%s", err, said(junk))
	}
	verb, rest, _ := strings.Cut(listed, " ")
	if verb != "builds" {
		return res, stage1Error(listed)
	}
	cached := strings.Fields(rest)
	if guess {
		// Its own word for a guess taken: a far side that garbled the
		// guess (something read part of it before stage 1) cannot seem
		// to have taken it.
		reply, junk, err := readUntil(rw, func(l string) bool { return l == "guessed" || l == "want" || strings.HasPrefix(l, "MITOGO1-ERROR") })
		if err != nil {
			return res, fmt.Errorf("stage 1: %w%s", err, said(junk))
		}
		switch reply {
		case "guessed":
			return guessed(rw, res, began, self.Hash)
		case "want":
		default:
			return res, stage1Error(reply)
		}
	}
	// Not guessed: the build for the platform stage 1 said.
	bin := self
	if res.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		bin = nil
		if provider != nil {
			if bin, err = provider(res.Platform); err != nil {
				return res, fmt.Errorf("binary for %s: %w", res.Platform, err)
			}
		}
		if bin == nil {
			return res, &PlatformError{Platform: res.Platform}
		}
	}
	if opts.Fresh {
		cached = slices.DeleteFunc(cached, func(h string) bool { return h == bin.Hash }) // not a base either
	}
	// A delta at hand goes with the hash, before the far side says it
	// lacks the binary (it does not list it): no round trip waits for it.
	var early string
	var delta []byte
	if !opts.NoCache && !opts.Fresh && !slices.Contains(cached, bin.Hash) { // fresh: the hash line says so, a delta may follow need
		found := time.Now()
		var err error
		if early, delta, err = bin.deltaFor(ctx, cached, false); err != nil {
			return res, fmt.Errorf("computing a delta: %w", err)
		}
		res.DeltaFound = time.Since(found)
	}
	hashLine := bin.Hash + "\n"
	switch {
	case opts.NoCache:
		hashLine = bin.Hash + " nocache\n"
	case delta != nil:
		hashLine = bin.Hash + " delta\n"
	case opts.Fresh:
		hashLine = bin.Hash + " fresh\n"
	}
	asked := time.Now()
	if _, err := io.WriteString(rw, hashLine); err != nil {
		return res, fmt.Errorf("stage 1: %w", err)
	}
	if delta != nil {
		if err := writeDelta(rw, early, delta, opts.Progress); err != nil {
			return res, err
		}
		res.Sent = int64(len(delta))
	}
	got, junk, err := readUntil(rw, func(l string) bool { return l == "got" || strings.HasPrefix(l, "MITOGO1-ERROR") })
	if err != nil {
		return res, fmt.Errorf("stage 1: %w%s", err, said(junk))
	}
	if got != "got" {
		return res, stage1Error(got)
	}
	// With an early delta, the round trip includes what the delta's
	// write waited for the link's buffers: only a large delta, and the
	// round trip matters only if it does not apply.
	res.RTT = time.Since(asked)
	// On a near link (the same host, a LAN) the pieces, compressed while
	// they go, arrive sooner than a smaller form the far side unpacks more
	// slowly (xz); the form pays where bytes are dear.
	far := res.RTT >= cmp.Or(opts.nearRTT, NearRTT)
	answer, junk, err := readUntil(rw, func(l string) bool {
		return l == "have" || strings.HasPrefix(l, "need ") || strings.HasPrefix(l, "MITOGO1-ERROR")
	})
	if err != nil {
		return res, fmt.Errorf("stage 1: %w%s", err, said(junk))
	}
	answered := time.Now()
	res.Probe = answered.Sub(began)
	verb, rest, _ = strings.Cut(answer, " ")
	switch verb {
	case "need":
		f := strings.Fields(rest)
		if len(f) < 2 {
			return res, stage1Error(answer)
		}
		decoders := map[string]bool{}
		for _, d := range strings.Split(f[0], ",") {
			decoders[d] = true
		}
		gz, pieces := decoders["gz"], f[1] == "pieces"
		if early == "" && !opts.NoCache {
			// None at hand: one worth making on this link, if any.
			found := time.Now()
			base, d, err := bin.deltaFor(ctx, cached, far)
			res.DeltaFound += time.Since(found)
			if err != nil {
				return res, fmt.Errorf("computing a delta: %w", err)
			}
			if d != nil {
				if err := writeDelta(rw, base, d, opts.Progress); err != nil {
					return res, err
				}
				early, res.Sent = base, int64(len(d))
			}
		}
		if early != "" {
			if res.Delta, err = deltaApplied(rw, early); err != nil {
				return res, err
			}
		}
		if res.Delta != "" {
			res.Patched = time.Since(asked)
			res.Uploaded = true
			bin.storeSent()
			break
		}
		if opts.Sending != nil {
			opts.Sending(res.Platform, res.CacheDir, bin.size())
		}
		var n int64
		w := newProgressWriter(rw, opts.Progress)
		var format string
		var form []byte
		if far {
			format, form = bin.form(decoders)
		}
		switch {
		case form != nil:
			// Made for an earlier upload of this build, and smaller.
			n, err = sendForm(w, format, form)
			res.Form = format
		case gz && pieces:
			// Pieces go as they are compressed; the far side unpacks
			// the first while this side compresses the next.
			n, err = bin.sendPieces(w)
		case gz:
			n, err = bin.sendWhole(w, true)
		default:
			n, err = bin.sendWhole(w, false)
		}
		res.Sent += n
		if err != nil {
			return res, err
		}
		res.Uploaded = true
		bin.storeSent() // while the far side checks what it received
		if form == nil && far && !opts.NoForms {
			bin.startForm(decoders, res.Platform, cmp.Or(opts.formNice, "19")) // for the next upload
		}
	case "have":
		return res, waitReady(rw, &res, answered, bin.Hash)
	default:
		return res, stage1Error(answer)
	}
	return res, waitReady(rw, &res, answered, "")
}

// ErrCachedBuildFailed is why a connect failed when the far side's cached
// build ended before it announced itself: a build damaged in the cache (cut
// short by a crash) fails so on every connect. Run with Options.Fresh
// replaces it when it is damaged.
var ErrCachedBuildFailed = errors.New("the cached build did not start")

// CachedBuildError is a cached build that ended before it announced
// itself; it matches ErrCachedBuildFailed.
type CachedBuildError struct {
	Path string // the build on the far side
	Err  error  // how the stream ended, and what the far side printed
}

func (e *CachedBuildError) Error() string {
	return fmt.Sprintf("%v: %s: %v", ErrCachedBuildFailed, e.Path, e.Err)
}

// Unwrap returns ErrCachedBuildFailed and how the stream ended.
func (e *CachedBuildError) Unwrap() []error { return []error{ErrCachedBuildFailed, e.Err} }

// waitReady waits for the child to announce itself, and records how long
// that took since answered. cached is the hash of the cached build it runs,
// "" for one just sent: a cached build that fails is named.
func waitReady(rw io.Reader, res *Result, answered time.Time, cached string) error {
	if _, junk, err := readUntil(rw, func(l string) bool { return l == ReadyLine }); err != nil {
		if cached != "" {
			return &CachedBuildError{Path: res.CacheDir + "/" + cached, Err: fmt.Errorf("%w%s", err, said(junk))}
		}
		return fmt.Errorf("the child did not start: %w%s", err, said(junk))
	}
	res.Transfer = time.Since(answered)
	return nil
}

// writeDelta sends delta, against the build base, after its byte count
// and base. When that fails, stage 1 may have stopped reading to say why:
// its error line is the error then.
func writeDelta(rw io.ReadWriter, base string, delta []byte, progress func(sent, total int64)) error {
	_, err := io.WriteString(rw, strconv.Itoa(len(delta))+" "+base+"\n")
	if err == nil {
		pw := newProgressWriter(rw, progress)
		expect(pw, int64(len(delta)))
		_, err = pw.Write(delta)
	}
	if err != nil {
		if l, _, rerr := readUntil(rw, func(l string) bool { return strings.HasPrefix(l, "MITOGO1-ERROR") }); rerr == nil {
			return stage1Error(l)
		}
		return fmt.Errorf("sending the delta: %w", err)
	}
	return nil
}

// deltaApplied reads whether the delta sent against base applied: it
// returns base when it did, "" when it did not (stage 1 then waits for
// the whole binary).
func deltaApplied(r io.Reader, base string) (string, error) {
	answer, junk, err := readUntil(r, func(l string) bool {
		return l == "patched" || l == "need" || strings.HasPrefix(l, "MITOGO1-ERROR")
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("stage 1, applying the delta: %w%s", err, said(junk))
	case answer == "patched":
		return base, nil
	case answer == "need":
		return "", nil
	}
	return "", stage1Error(answer)
}

// sendForm writes a compressed form of the binary, whole, after its byte
// count and format.
func sendForm(w io.Writer, format string, form []byte) (int64, error) {
	expect(w, int64(len(form)))
	if _, err := io.WriteString(w, strconv.Itoa(len(form))+" - "+format+"\n"); err != nil {
		return 0, fmt.Errorf("sending the binary: %w", err)
	}
	if _, err := w.Write(form); err != nil {
		return 0, fmt.Errorf("sending the binary: %w", err)
	}
	return int64(len(form)), nil
}

// readUntil reads lines, one byte at a time so nothing after them is
// consumed, until one satisfies want. It gives up after 64 KiB of others.
func readUntil(r io.Reader, want func(string) bool) (string, []string, error) {
	var junk []string
	var line []byte
	var b [1]byte
	total := 0
	for total < 64<<10 {
		n, err := r.Read(b[:])
		if n == 1 {
			total++
			if b[0] != '\n' {
				line = append(line, b[0])
				continue
			}
			l := strings.TrimRight(string(line), "\r")
			line = line[:0]
			if want(l) {
				return l, junk, nil
			}
			junk = append(junk, l)
			continue
		}
		if err != nil {
			if len(line) > 0 {
				junk = append(junk, string(line))
			}
			return "", junk, err
		}
	}
	return "", junk, errors.New("no protocol line in 64 KiB of output")
}

func said(junk []string) string {
	if len(junk) == 0 {
		return ""
	}
	if len(junk) > 10 {
		junk = junk[len(junk)-10:]
	}
	return fmt.Sprintf("; it printed %q", strings.Join(junk, "\n"))
}

// platform maps uname -s and -m to GOOS/GOARCH.
func platform(sys, machine string) string {
	goos := strings.ToLower(sys)
	arch := machine
	switch machine {
	case "x86_64", "amd64":
		arch = "amd64"
	case "aarch64", "arm64":
		arch = "arm64"
	case "i386", "i486", "i586", "i686":
		arch = "386"
	case "armv6l", "armv7l":
		arch = "arm"
	case "ppc64le":
		arch = "ppc64le"
	case "s390x":
		arch = "s390x"
	case "riscv64":
		arch = "riscv64"
	}
	return goos + "/" + arch
}

// ErrCacheGone is why stage 1 failed when the far side's cache directory
// was removed while it used it (between its listing and the upload).
var ErrCacheGone = errors.New("cache directory removed while in use")

// stage1Error is the error a MITOGO1-ERROR line from stage 1 reports (or
// another line where one of the protocol was due).
func stage1Error(line string) error {
	if dir, ok := strings.CutPrefix(line, "MITOGO1-ERROR cache-gone "); ok {
		return fmt.Errorf("stage 1 failed: %s: %w (by another process? connecting again makes it anew)", dir, ErrCacheGone)
	}
	return fmt.Errorf("stage 1 failed: %q", line)
}
