package actors

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mitogo/mitogo/messages"
)

// Log records travel to the master as KindLog envelopes. In a child,
// slog.Default() is a forwardHandler; the master replays each record into
// its own handler with a "context" attribute naming where it was made.

// forwardHandler is a child's slog handler: it sends records to the master.
type forwardHandler struct {
	r     *Router
	level slog.Level
	attrs []slog.Attr
	group string
}

func (h *forwardHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *forwardHandler) Handle(_ context.Context, rec slog.Record) error {
	lr := &messages.LogRecord{Time: rec.Time, Level: int(rec.Level), Message: rec.Message, Context: h.r.Name()}
	add := func(a slog.Attr) {
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		lr.Attrs = append(lr.Attrs, messages.Attr{Key: key, Value: attrValue(a.Value)})
	}
	for _, a := range h.attrs {
		add(a)
	}
	rec.Attrs(func(a slog.Attr) bool { add(a); return true })
	h.r.emit(lr)
	return nil
}

func (h *forwardHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

func (h *forwardHandler) WithGroup(name string) slog.Handler {
	n := *h
	if n.group != "" {
		name = n.group + "." + name
	}
	n.group = name
	return &n
}

func attrValue(v slog.Value) any {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindInt64:
		return v.Int64()
	case slog.KindUint64:
		return v.Uint64()
	case slog.KindFloat64:
		return v.Float64()
	case slog.KindBool:
		return v.Bool()
	case slog.KindDuration:
		return v.Duration().String()
	case slog.KindTime:
		return v.Time()
	}
	return fmt.Sprint(v.Any())
}

// emit sends a record towards the master, or hands it to the master's
// handler when this is the master.
func (r *Router) emit(lr *messages.LogRecord) {
	if r.parent == nil {
		r.replay(lr)
		return
	}
	if lr.Level < int(r.cfg.logLevel) {
		return
	}
	payload, err := encode(lr)
	if err != nil {
		return
	}
	h := messages.Header{Kind: messages.KindLog, Dst: 0, Src: r.id}
	_ = r.send(&h, payload)
}

// deliverLog handles a record that reached this context (the master)
// from context src. A record may name src or a context below it (a parent
// forwards its child's output); any other name is a lie: the record is
// kept, named after src, with the claim in a "claimed_context" attribute.
func (r *Router) deliverLog(src uint32, payload []byte) {
	var lr messages.LogRecord
	if err := decode(payload, &lr); err != nil {
		r.logger.Warn("malformed log record dropped", "from", r.table.Load().name(src), "error", err)
		return
	}
	name := r.table.Load().name(src)
	within := func(c string) bool { return c == name || strings.HasPrefix(c, name+"/") }
	if !within(lr.Context) {
		lr.Attrs = append(lr.Attrs, messages.Attr{Key: "claimed_context", Value: lr.Context})
		lr.Context = name
	}
	// A record about a context below (slog.Info(..., "context", name) in a
	// child) names it in an attribute: that becomes the record's context,
	// once, if it is within the sender's subtree.
	for i := 0; i < len(lr.Attrs); i++ {
		if lr.Attrs[i].Key != "context" {
			continue
		}
		if c, ok := lr.Attrs[i].Value.(string); ok && within(c) {
			lr.Context = c
			lr.Attrs = append(lr.Attrs[:i], lr.Attrs[i+1:]...)
			i--
			continue
		}
		lr.Attrs[i].Key = "claimed_context"
	}
	r.emit(&lr)
}

func (r *Router) replay(lr *messages.LogRecord) {
	h := r.logger.Handler()
	ctx := context.Background()
	if !h.Enabled(ctx, slog.Level(lr.Level)) {
		return
	}
	t := lr.Time
	if t.IsZero() {
		t = time.Now()
	}
	rec := slog.NewRecord(t, slog.Level(lr.Level), lr.Message, 0)
	rec.AddAttrs(slog.String("context", lr.Context))
	for _, a := range lr.Attrs {
		rec.AddAttrs(slog.Any(a.Key, a.Value))
	}
	_ = h.Handle(ctx, rec)
}

// demoteHandler lowers protoactor's Info records to Debug: its "actor
// system started" and supervision notes are not news for our users.
type demoteHandler struct{ h slog.Handler }

func (d demoteHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return d.h.Enabled(ctx, demote(l))
}

func (d demoteHandler) Handle(ctx context.Context, rec slog.Record) error {
	rec.Level = demote(rec.Level)
	return d.h.Handle(ctx, rec)
}

func (d demoteHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return demoteHandler{d.h.WithAttrs(as)}
}
func (d demoteHandler) WithGroup(name string) slog.Handler { return demoteHandler{d.h.WithGroup(name)} }

func demote(l slog.Level) slog.Level {
	if l <= slog.LevelInfo {
		return slog.LevelDebug
	}
	return l
}
