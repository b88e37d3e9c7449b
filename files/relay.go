package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/mitogo/mitogo/actors"
)

// receive is files.receive: it writes the tree its caller sends into
// req.Dst when req.Self, and relays it to the contexts of req.Children.
func receive(ctx context.Context, req receiveRequest) ([]targetResult, error) {
	r := actors.RouterFrom(ctx)
	if r == nil {
		return nil, errors.New("files.receive: must be called through a router")
	}
	up := newChannel(r)
	defer up.Release()
	up.Connect(req.Reply)
	defer up.Close() // tells the sender this side has stopped writing
	addr := up.Addr()
	if err := up.Send(ctx, &item{Kind: kindAddr, Addr: &addr}); err != nil {
		return nil, err
	}
	ids := node{ID: r.ID(), Self: req.Self, Children: req.Children}.ids()
	if len(req.Children) == 0 {
		if !req.Self {
			return nil, protocolf("files.receive with nothing to do")
		}
		res, err := receiveTree(ctx, up, req.Dst, req.Name, req.Owner, nil)
		if err != nil {
			return failed(ids, err), nil
		}
		res.ID = r.ID()
		return []targetResult{res}, nil
	}
	var links []*link
	for _, c := range req.Children {
		links = append(links, openLink(ctx, r, r.Context(c.ID), c, req.Dst, req.Name, req.Owner))
	}
	if req.Self {
		links = append(links, localLink(ctx, r, req.Dst, req.Name, req.Owner))
	}
	err := relay(ctx, up, &sender{links: links})
	var out []targetResult
	for _, l := range links {
		out = append(out, l.finish()...)
	}
	if err != nil {
		for i := range out {
			if out[i].Err == "" {
				out[i].Err, out[i].Code = err.Error(), codeOf(err)
			}
		}
	}
	return out, nil
}

// relay passes what comes from up on to every link, and answers up's
// questions for them: a file is skipped, or continued from a prefix, only
// when every link holds the same.
func relay(ctx context.Context, up *actors.Channel, s *sender) error {
	for {
		var it item
		if err := up.Recv(ctx, &it); err != nil {
			if err == io.EOF {
				err = protocolf("the sender closed the channel before the end")
			}
			return err
		}
		switch it.Kind {
		case kindDone:
			s.broadcast(&it)
			return nil
		case kindAbort:
			s.broadcast(&it)
			return fmt.Errorf("%w: %s", ErrAborted, it.Err)
		case kindEntry:
			s.broadcast(&it)
			if it.Entry != nil && it.Entry.Type == typeFile {
				if err := relayFile(ctx, up, s); err != nil {
					return err
				}
			}
		default:
			return protocolf("item of kind %d where an entry was due", it.Kind)
		}
		if !s.anyLive() {
			return s.firstErr()
		}
	}
}

func relayFile(ctx context.Context, up *actors.Channel, s *sender) error {
	var claim *item
	same := true
	for _, l := range s.links {
		l.claim = item{}
		if !l.recv(&l.claim) {
			continue
		}
		if l.claim.Kind != kindHave {
			l.fail(protocolf("%s answered a file with kind %d", l.name, l.claim.Kind))
			continue
		}
		if claim == nil {
			claim = &l.claim
		} else if claim.Whole != l.claim.Whole || claim.Off != l.claim.Off || !bytes.Equal(claim.Hash, l.claim.Hash) {
			same = false
		}
	}
	have := item{Kind: kindHave}
	if claim != nil && same {
		have.Whole, have.Off, have.Hash = claim.Whole, claim.Off, claim.Hash
	}
	if err := up.Send(ctx, &have); err != nil {
		return err
	}
	var buf []byte // the data items decode into it in turn: broadcast copies them
	for {
		it := item{Data: buf[:0]}
		if err := up.Recv(ctx, &it); err != nil {
			return err
		}
		if cap(it.Data) <= chunkSize {
			buf = it.Data
		}
		s.broadcast(&it)
		switch it.Kind {
		case kindSkip, kindEnd:
			return nil
		case kindAbort:
			return fmt.Errorf("%w: %s", ErrAborted, it.Err)
		case kindStart, kindData:
		default:
			return protocolf("item of kind %d in a file's data", it.Kind)
		}
		if !slices.ContainsFunc(s.links, (*link).live) {
			return s.firstErr()
		}
	}
}
