package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"time"

	"github.com/nats-io/nats.go"
)

// Causes of a failed drain or rebalance, matched with errors.Is.
var (
	// ErrNoMember: no live member of the cluster has that name.
	ErrNoMember = errors.New("no such member")
	// ErrControl: the member refused or failed the request.
	ErrControl = errors.New("the member refused the request")
	// ErrLastMember: a drain was refused because no other active (not
	// draining) member would take the member's hosts; they would be
	// left with no controller. HandoverOptions.Force drains it anyway.
	ErrLastMember = errors.New("no other active member would take its hosts")
	// ErrNoAnswer: the member did not acknowledge a drain, resume or
	// rebalance request in time (it is stopped, frozen, or cut off from
	// NATS). The request carried its deadline: a member that gets it
	// later ignores it, so nothing was changed.
	ErrNoAnswer = errors.New("the member did not answer")
)

// defaultAnswer is how long a member has to acknowledge a control request
// when HandoverOptions.Answer is 0.
const defaultAnswer = 30 * time.Second

// answerSlack is how much longer than a request's deadline its sender
// waits for the acknowledgement: the member checks the deadline when it
// gets the request, and its acknowledgement then takes a moment to come.
const answerSlack = time.Second

// codeControl is a control reply's error code (ErrControl).
const codeControl = "control"

// HandoverOptions tunes Drain and Rebalance.
type HandoverOptions struct {
	// Grace is how long the calls in flight on a host being handed over
	// may run on before they are cancelled (their callers get the
	// error); 0 means 30s.
	Grace time.Duration
	// Settle bounds the wait for other members to hold a released host
	// again; 0 means 30s. A host nobody held by then is reported with
	// Move.To "".
	Settle time.Duration
	// Batch is how many hosts a rebalance moves at a time; 0 means 4.
	Batch int
	// Force makes Drain drain a member although no other active member
	// would take its hosts (without it, Drain fails with ErrLastMember).
	Force bool
	// Answer is how long a member has to acknowledge a request (it
	// acknowledges at once, then works); 0 means 30s. The request carries
	// this deadline, and a member that gets it past it ignores it.
	Answer time.Duration
}

// control sends one control request to a member and waits for its reply.
// The member must acknowledge the request within answer (0: 30s, and no
// later than ctx's deadline): the request carries that deadline, and a
// member that gets it later (it was frozen, or cut off from NATS) ignores
// it; the reply, once acknowledged, is waited for until ctx ends.
func (cl *Client) control(ctx context.Context, member string, req ctlRequest, answer time.Duration) (*ctlReply, error) {
	if answer <= 0 {
		answer = defaultAnswer
	}
	by := time.Now().Add(answer)
	if d, ok := ctx.Deadline(); ok && d.Before(by) {
		by, answer = d, time.Until(d)
	}
	req.V, req.Deadline, req.Ack = ProtocolVersion, by.UnixNano(), true
	b, _ := json.Marshal(req)
	inbox := cl.nc.NewRespInbox()
	sub, err := cl.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: member %s: %s: %w", cl.cluster, member, req.Op, err)
	}
	defer sub.Unsubscribe()
	if err := cl.nc.PublishRequest(memberSubject(cl.cluster, member), inbox, b); err != nil {
		return nil, fmt.Errorf("cluster %s: member %s: %s: %w", cl.cluster, member, req.Op, err)
	}
	actx, cancel := context.WithDeadline(ctx, by.Add(answerSlack))
	m, err := sub.NextMsgWithContext(actx)
	cancel()
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fmt.Errorf("cluster %s: member %s: %w", cl.cluster, member, ErrNoMember)
	case err != nil && errors.Is(ctx.Err(), context.Canceled):
		return nil, fmt.Errorf("cluster %s: member %s: %s: %w", cl.cluster, member, req.Op, ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("cluster %s: member %s did not answer the %s request within %v (stopped, frozen or cut off from NATS?; it ignores the request if it gets it later): %w",
			cl.cluster, member, req.Op, answer.Round(100*time.Millisecond), ErrNoAnswer)
	}
	rep, err := cl.decodeReply(member, m.Data)
	if err != nil || !rep.Accepted {
		return rep, err
	}
	// Acknowledged: the member works on it; its reply ends the request.
	if m, err = sub.NextMsgWithContext(ctx); err != nil {
		return nil, fmt.Errorf("cluster %s: member %s: %s: accepted, no reply: %w", cl.cluster, member, req.Op, err)
	}
	return cl.decodeReply(member, m.Data)
}

// decodeReply reads a member's reply to a control request: the error
// matches ErrVersion or ErrControl when the member refused it.
func (cl *Client) decodeReply(member string, data []byte) (*ctlReply, error) {
	var rep ctlReply
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("cluster %s: member %s: unreadable reply: %w", cl.cluster, member, ErrVersion)
	}
	switch rep.Code {
	case "":
		return &rep, nil
	case codeVersion:
		return &rep, fmt.Errorf("cluster %s: member %s: %s: %w", cl.cluster, member, rep.Msg, ErrVersion)
	default:
		return &rep, fmt.Errorf("cluster %s: member %s: %s: %w", cl.cluster, member, rep.Msg, ErrControl)
	}
}

// Drain makes a member hand all its hosts over to the others (see
// Controller.Drain) and waits until they hold them. It returns each
// released host's move; To is "" for a host that no other member held
// within opt.Settle (no other member has it in its inventory, or its
// connect failed). The member stays in the cluster, owning nothing, until
// it stops or Resume. Unless opt.Force, it refuses (ErrLastMember) to
// drain a member when the cluster's status shows no other member that is
// not draining: its hosts would be released with no one to take them.
func (cl *Client) Drain(ctx context.Context, member string, opt HandoverOptions) ([]Move, error) {
	if !opt.Force {
		if err := cl.othersActive(ctx, member); err != nil {
			return nil, err
		}
	}
	rep, err := cl.control(ctx, member, ctlRequest{Op: opDrain, Grace: opt.Grace}, opt.Answer)
	if rep == nil {
		return nil, err
	}
	moves, werr := cl.awaitHeld(ctx, member, rep.Released, WhyDrain, opt.Settle)
	return moves, errors.Join(err, werr)
}

// othersActive returns an error matching ErrLastMember when member is a
// live member and no other live member is active (not draining).
func (cl *Client) othersActive(ctx context.Context, member string) error {
	st, err := cl.Status(ctx)
	if err != nil {
		return fmt.Errorf("cluster %s: drain of member %s: %w", cl.cluster, member, err)
	}
	known := false
	for _, m := range st.Members {
		switch {
		case m.ID == member:
			known = true
		case !m.Draining:
			return nil
		}
	}
	if !known {
		return nil // the request itself says there is no such member
	}
	return fmt.Errorf("cluster %s: drain of member %s refused: %w", cl.cluster, member, ErrLastMember)
}

// Resume ends a member's drain: it claims hosts without an owner again.
// The member must acknowledge it within 30s, or by ctx's deadline if
// sooner (else ErrNoAnswer, and it ignores the request if it gets it
// later).
func (cl *Client) Resume(ctx context.Context, member string) error {
	_, err := cl.control(ctx, member, ctlRequest{Op: opResume}, 0)
	return err
}

// Rebalance moves hosts from the members that own more than their share
// to those that own less, gradually: at most opt.Batch hosts at a time,
// each to its preferred member among the live ones (the rendezvous hash
// that places hosts at start), waiting until the moved hosts are held
// again before the next batch. A move is made only when it narrows the
// gap (its owner holds at least two more hosts than its preferred
// member), so the result is as even as the hash allows and a second
// rebalance moves nothing. Draining members take no part. It returns the
// moves made.
func (cl *Client) Rebalance(ctx context.Context, opt HandoverOptions) ([]Move, error) {
	batch := opt.Batch
	if batch <= 0 {
		batch = 4
	}
	var all []Move
	// Each round moves at least one host (or ends the rebalance): as many
	// rounds as there are hosts bound it even when members other than the
	// planned ones take the hosts.
	for rounds := 0; ; rounds++ {
		st, err := cl.Status(ctx)
		if err != nil {
			return all, err
		}
		plan := planRebalance(st, batch)
		if len(plan) == 0 || rounds > len(st.Leases) {
			return all, nil
		}
		byFrom := map[string][]string{}
		for _, mv := range plan {
			byFrom[mv.From] = append(byFrom[mv.From], mv.Host)
		}
		progress := false
		for _, from := range sortedKeys(byFrom) {
			rep, err := cl.control(ctx, from, ctlRequest{Op: opHandOff, Hosts: byFrom[from], Grace: opt.Grace}, opt.Answer)
			if rep == nil {
				return all, err
			}
			moves, werr := cl.awaitHeld(ctx, from, rep.Released, WhyRebalance, opt.Settle)
			all = append(all, moves...)
			for _, mv := range moves {
				progress = progress || (mv.To != "" && mv.To != from)
			}
			if err = errors.Join(err, werr); err != nil {
				return all, err
			}
		}
		if !progress {
			return all, nil // the hosts came back to their owners: nothing more to gain
		}
	}
}

// planRebalance picks at most batch hosts to move, each from its owner to
// its preferred member, while the owner holds at least two more hosts
// than that member.
func planRebalance(st *Status, batch int) []Move {
	count := map[string]int{}
	var live []string
	for _, m := range st.Members {
		if !m.Draining {
			live = append(live, m.ID)
			count[m.ID] = 0
		}
	}
	if len(live) < 2 {
		return nil
	}
	for _, l := range st.Leases {
		if _, ok := count[l.Owner]; ok {
			count[l.Owner]++
		}
	}
	var plan []Move
	for _, l := range st.Leases { // sorted by host
		if len(plan) == batch {
			break
		}
		if _, ok := count[l.Owner]; !ok || !l.Ready {
			continue
		}
		p := preferred(l.Host, live)
		if p != l.Owner && count[l.Owner]-count[p] >= 2 {
			count[l.Owner]--
			count[p]++
			plan = append(plan, Move{Host: l.Host, From: l.Owner, To: p, Why: WhyRebalance})
		}
	}
	return plan
}

// awaitHeld waits until each released host is held (ready) under a lease
// of a member other than from, for at most settle (0: 30s), and returns
// the moves.
func (cl *Client) awaitHeld(ctx context.Context, from string, released []string, why string, settle time.Duration) ([]Move, error) {
	if settle <= 0 {
		settle = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	moves := make([]Move, len(released))
	left := len(released)
	for i, h := range released {
		moves[i] = Move{Host: h, From: from, Why: why}
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for left > 0 {
		st, err := cl.Status(ctx)
		if err == nil {
			held := map[string]LeaseInfo{}
			for _, l := range st.Leases {
				held[l.Host] = l
			}
			for i := range moves {
				if l, ok := held[moves[i].Host]; ok && moves[i].To == "" && l.Ready && l.Owner != from {
					moves[i].To, moves[i].At = l.Owner, l.Since
					left--
				}
			}
		}
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return moves, nil // the hosts nobody took are reported with To ""
		case <-t.C:
		}
	}
	return moves, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// lastMoves fills a status's last move and last failover from its
// members' entries.
func (st *Status) lastMoves() {
	for _, m := range st.Members {
		if mv := m.LastMove; mv != nil && (st.LastMove == nil || mv.At.After(st.LastMove.At)) {
			st.LastMove = mv
		}
		if mv := m.LastFailover; mv != nil && (st.LastFailover == nil || mv.At.After(st.LastFailover.At)) {
			st.LastFailover = mv
		}
	}
}

// buildName names the running binary's build: its main module's version
// and VCS revision (with "+dirty" for uncommitted changes).
func buildName() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	name := info.Main.Version
	var rev string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		name += " " + rev
	}
	if dirty {
		name += "+dirty"
	}
	return name
}
