package files

import (
	"context"
	"errors"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mitogo/mitogo/actors"
)

// Option changes how a transfer runs.
type Option func(*config)

type config struct {
	recursive bool
	owner     int
	progress  func(done, total int64)
}

// Recursive copies directories with everything in them; without it a
// directory source fails with ErrIsDirectory.
func Recursive() Option { return func(c *config) { c.recursive = true } }

// PreserveOwner(true) gives the copies their source's owner and group (by
// name, or by number where the name does not exist), which needs root on
// the receiving side; PreserveOwner(false) leaves the copies to the
// receiving account. Without it, ownership is kept when the receiving
// side runs as root.
func PreserveOwner(keep bool) Option {
	return func(c *config) {
		c.owner = ownerNo
		if keep {
			c.owner = ownerYes
		}
	}
}

// Progress calls fn on this side as the transfer advances: done bytes of
// the total size of the source's regular files have been sent or found
// already there. It is called on the transfer's goroutine: keep it short.
// A pull learns total from the sender's first entry.
func Progress(fn func(done, total int64)) Option { return func(c *config) { c.progress = fn } }

// Result is one target's outcome.
type Result struct {
	Target *actors.Context
	// Changed is true when anything at the destination was created or
	// modified: data, mode, times or owner.
	Changed bool
	Files   int   // regular files whose data was written
	Entries int   // files, directories and links in the source
	Bytes   int64 // file data that travelled to the destination (less what it had)
	Err     error // why this target failed; the others are not affected
}

var (
	sendFn   = actors.Register("files.send", send)
	parentFn = actors.Register("files.parent", func(ctx context.Context, _ struct{}) (int, error) {
		r := actors.RouterFrom(ctx)
		if r == nil {
			return 0, errors.New("files.parent: must be called through a router")
		}
		return r.ParentID(), nil
	})
)

// Push copies the local file or tree src to dst in target. dst is the
// copy's own path; with a trailing "/", the directory to copy into. A
// file whose dst is an existing directory goes into it (see the package
// documentation, Destinations).
func Push(ctx context.Context, target *actors.Context, src, dst string, opts ...Option) (Result, error) {
	res := PushMany(ctx, []*actors.Context{target}, src, dst, opts...)
	return res[0], res[0].Err
}

// PushMany copies src to dst in each of targets, reading it once and
// sending its bytes once over each hop of the tree: a context that leads
// to several targets receives the data once and relays it. The results
// are in the order of targets; one target's failure is its Result's Err
// and does not stop the others.
func PushMany(ctx context.Context, targets []*actors.Context, src, dst string, opts ...Option) []Result {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	results := make([]Result, len(targets))
	for i, t := range targets {
		results[i].Target = t
	}
	if len(targets) == 0 {
		return results
	}
	dst, name := into(dst, filepath.Base(filepath.Clean(src)))
	entries, total, err := walk(src, cfg.recursive)
	if err != nil {
		for i := range results {
			results[i].Err = &Error{Op: "push", Src: src, Target: results[i].Target.Name(), Err: err}
		}
		return results
	}
	r := targets[0].Router()
	plan, errs := planTree(ctx, r, targets)
	var links []*link
	for _, n := range plan.Children {
		links = append(links, openLink(ctx, r, r.Context(n.ID), n, dst, name, cfg.owner))
	}
	s := &sender{links: links, progress: cfg.progress}
	sendErr := s.sendTree(ctx, src, entries, total)
	byID := map[int]targetResult{}
	for _, l := range links {
		for _, tr := range l.finish() {
			byID[tr.ID] = tr
		}
	}
	for i, t := range targets {
		if err, ok := errs[t.ID()]; ok {
			results[i].Err = &Error{Op: "push", Src: src, Target: t.Name(), Err: err}
			continue
		}
		tr, ok := byID[t.ID()]
		var err error
		switch {
		case sendErr != nil && (!ok || tr.Err == ""):
			err = sendErr
		case !ok:
			err = protocolf("no result came back")
		case tr.err != nil:
			err = tr.err
		case tr.Err != "":
			err = decodeErr(tr.Err, tr.Code)
		default:
			results[i].Changed, results[i].Files, results[i].Entries, results[i].Bytes = tr.Changed, tr.Files, tr.Entries, tr.Bytes
		}
		if err != nil {
			results[i].Err = &Error{Op: "push", Src: src, Target: t.Name(), Err: err}
		}
	}
	return results
}

// planTree asks each target for its parent, up to the master, and returns
// the tree of contexts that leads to them, with chains of single
// branches shortened (the data passes the routers between anyway). Targets
// that cannot be asked, or are the master, are in errs.
func planTree(ctx context.Context, r *actors.Router, targets []*actors.Context) (node, map[int]error) {
	errs := map[int]error{}
	self := map[int]bool{}
	var ids []int
	for _, t := range targets {
		if t.ID() == r.ID() {
			errs[t.ID()] = errors.New("it is this context: copy files here with the os package")
			continue
		}
		ids = append(ids, t.ID())
	}
	parent, failed := lookupParents(ctx, r.ID(), ids, func(ctx context.Context, id int) (int, error) {
		return parentFn.Call(ctx, r.Context(id), struct{}{})
	})
	for _, t := range targets {
		if _, bad := errs[t.ID()]; bad {
			continue
		}
		// Up to the master, or to a context that could not be asked (a
		// parent map with a loop in it is cut short after every entry).
		id := t.ID()
		for n := 0; id != r.ID() && n <= len(parent); n++ {
			if err, bad := failed[id]; bad {
				errs[t.ID()] = err
				break
			}
			id = parent[id]
		}
		if _, bad := errs[t.ID()]; !bad && id != r.ID() {
			errs[t.ID()] = protocolf("its parents do not lead to %s", r.Name())
		}
		if _, bad := errs[t.ID()]; !bad {
			self[t.ID()] = true
		}
	}
	children := map[int][]int{}
	used := map[int]bool{}
	for id := range self {
		for id != r.ID() && !used[id] {
			if _, known := parent[id]; !known {
				break
			}
			used[id] = true
			children[parent[id]] = append(children[parent[id]], id)
			id = parent[id]
		}
	}
	var build func(id int) node
	build = func(id int) node {
		n := node{ID: id, Self: self[id]}
		kids := children[id]
		slices.Sort(kids)
		for _, k := range kids {
			c := build(k)
			for !c.Self && len(c.Children) == 1 {
				c = c.Children[0]
			}
			n.Children = append(n.Children, c)
		}
		return n
	}
	return build(r.ID()), errs
}

// Pull copies the file or tree src in source to the local dst, as Push
// does the other way.
func Pull(ctx context.Context, source *actors.Context, src, dst string, opts ...Option) (Result, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	res := Result{Target: source}
	dst, name := into(dst, path.Base(path.Clean(src)))
	r := source.Router()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := newChannel(r)
	defer ch.Release()
	call := sendFn.Go(ctx, source, sendRequest{Src: src, Recursive: cfg.recursive, Reply: ch.Addr()})
	// The sender's error, in its call's result or as the call's.
	senderErr := func() error {
		sr, err := call.Wait()
		if err == nil {
			err = decodeErr(sr.Err, sr.Code)
		}
		return err
	}
	// The sender returns once it has sent everything, which may be long
	// before this side has written it: only its failure ends the receive.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-call.Done():
			if senderErr() != nil {
				cancel(errSenderStopped)
			}
		case <-ctx.Done():
		}
	}()
	defer func() { cancel(nil); <-watched }()
	var first item
	err := ch.Recv(ctx, &first)
	if err == nil && (first.Kind != kindAddr || first.Addr == nil) {
		err = protocolf("%s: first item is of kind %d, not its address", source.Name(), first.Kind)
	}
	if err == nil {
		ch.Connect(*first.Addr)
		var tr targetResult
		tr, err = receiveTree(ctx, ch, dst, name, cfg.owner, cfg.progress)
		res.Changed, res.Files, res.Entries, res.Bytes = tr.Changed, tr.Files, tr.Entries, tr.Bytes
	}
	// The receive ended because the sender stopped (it closed its end, or
	// its call failed): the sender's error, on its way, says why. Any
	// other failure is this side's own (or the caller's context's) and is
	// the one reported: the sender's then only says that it was cut off.
	senderStopped := err == io.EOF || errors.Is(err, ErrProtocol) || errors.Is(context.Cause(ctx), errSenderStopped)
	if senderStopped {
		t := time.NewTimer(stopGrace)
		select {
		case <-call.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if err != nil {
		cancel(nil)
	}
	if serr := senderErr(); serr != nil && (err == nil || senderStopped) {
		err = serr
	}
	if err != nil {
		res.Err = &Error{Op: "pull", Src: src, Target: source.Name(), Err: err}
	}
	return res, res.Err
}

// send is files.send: it sends the tree at req.Src to the caller's channel.
func send(ctx context.Context, req sendRequest) (sendResult, error) {
	r := actors.RouterFrom(ctx)
	if r == nil {
		return sendResult{}, errors.New("files.send: must be called through a router")
	}
	ch := newChannel(r)
	defer ch.Release()
	ch.Connect(req.Reply)
	defer ch.Close()
	entries, total, err := walk(req.Src, req.Recursive)
	if err != nil {
		return sendResult{Err: err.Error(), Code: codeOf(err)}, nil
	}
	addr := ch.Addr()
	if err := ch.Send(ctx, &item{Kind: kindAddr, Addr: &addr}); err != nil {
		return sendResult{}, err
	}
	l := &link{ch: ch, ctx: ctx, name: "the caller"}
	s := &sender{links: []*link{l}}
	err = s.sendTree(ctx, req.Src, entries, total)
	if err == nil {
		err = l.err
	}
	if err != nil {
		return sendResult{Bytes: s.sent, Err: err.Error(), Code: codeOf(err)}, nil
	}
	return sendResult{Bytes: s.sent}, nil
}

// into returns dst/name when dst names a directory to copy into (it ends
// in a slash, or is "." or ".."). Otherwise it returns dst and name: the
// receiver copies into dst, as name, only when dst is an existing
// directory and the source is not one (see receiver.into).
func into(dst, name string) (string, string) {
	b := filepath.Base(dst)
	if strings.HasSuffix(dst, "/") || b == "." || b == ".." {
		return filepath.Join(dst, name), ""
	}
	return dst, name
}
