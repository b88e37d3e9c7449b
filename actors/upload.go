package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/transport"
)

// UploadProgress is how far the upload of this program to a far side that
// lacks it has come (first contact, or a delta after a rebuild).
type UploadProgress struct {
	Context string        // the context being connected
	Sent    int64         // bytes sent so far
	Total   int64         // the bytes to send, estimated until the end
	Elapsed time.Duration // since the upload began
	Done    bool          // the upload ended (the last report for it)
}

// WithUploadProgress has fn called as this program is sent to a far side
// that lacks it: every 64 KiB, and once with Done when the upload ends,
// from the goroutine that connects (uploads to several contexts report at
// once, from theirs). The CLI draws a progress line with it.
func WithUploadProgress(fn func(UploadProgress)) Option {
	return func(c *config) { c.uploadProgress = fn }
}

// uploadReporter returns the bootstrap progress callback for the upload
// to the context name, and the function that reports its end; both are no-ops
// without WithUploadProgress.
func (r *Router) uploadReporter(name string) (func(sent, total int64), func()) {
	fn := r.cfg.uploadProgress
	if fn == nil {
		return nil, func() {}
	}
	var began time.Time
	var last UploadProgress
	progress := func(sent, total int64) {
		if began.IsZero() {
			began = time.Now()
		}
		last = UploadProgress{Context: name, Sent: sent, Total: total, Elapsed: time.Since(began)}
		fn(last)
	}
	done := func() {
		if !began.IsZero() {
			last.Done, last.Elapsed = true, time.Since(began)
			fn(last)
		}
	}
	return progress, done
}

// logPhases logs how long each step of connecting the context name took:
// the method's own (ssh: tcp, ssh_handshake, auth, session), starting it
// (of the methods that do not tell), stage 1, the upload or the exec of a
// cached build (of a delta's upload: finding it, and its transfer and
// patching until the far side said it applied), and the handshake. At Info for the methods that run stage 1
// (res is not nil), at Debug for local children.
func (r *Router) logPhases(name string, started time.Duration, phases []transport.Phase, res *bootstrap.Result, handshake, total time.Duration) {
	attrs := []any{slog.String("context", name)}
	if len(phases) == 0 {
		attrs = append(attrs, slog.Duration("start", started))
	}
	for _, p := range phases {
		attrs = append(attrs, slog.Duration(p.Name, p.Took))
	}
	if res != nil {
		attrs = append(attrs, slog.Duration("stage1", res.Probe))
		if res.Uploaded {
			attrs = append(attrs, slog.Duration("upload", res.Transfer), slog.Int64("sent", res.Sent))
			if res.Delta != "" {
				attrs = append(attrs, slog.String("delta_from", res.Delta[:12]),
					slog.Duration("delta_found", res.DeltaFound), slog.Duration("patched", res.Patched))
			}
		} else {
			attrs = append(attrs, slog.Duration("exec", res.Transfer))
			if res.Guessed {
				attrs = append(attrs, slog.Bool("guessed", true)) // hash and Hello went at once
			}
		}
	}
	attrs = append(attrs, slog.Duration("handshake", handshake), slog.Duration("total", total))
	level := slog.LevelDebug
	if res != nil {
		level = slog.LevelInfo
	}
	r.logger.Log(context.Background(), level, "connected", attrs...)
}
