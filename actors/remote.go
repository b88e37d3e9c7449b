package actors

import (
	"strconv"
	"strings"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mitogo/mitogo/messages"
)

// Location transparency: the process registry asks resolve for every PID
// whose address is another context's ("ctx:N"); the Process it returns wraps
// what is sent in an envelope for the router. On arrival, deliverActor
// hands the message to the local actor with the sender's PID intact, so
// Respond finds its way back to a future in the caller's context. System
// messages go by deliverSystem: Stop, and Watch, Unwatch and Terminated,
// which watch.go turns into watches across contexts.

func init() {
	messages.Register[*actor.DeadLetterResponse]("protoactor.DeadLetterResponse")
}

func (r *Router) resolve(pid *actor.PID) (actor.Process, bool) {
	id, ok := parseAddress(pid.Address)
	if !ok {
		return nil, false
	}
	return &remoteProcess{r: r, dst: id}, true
}

func parseAddress(addr string) (uint32, bool) {
	rest, ok := strings.CutPrefix(addr, "ctx:")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	return uint32(n), err == nil
}

// remoteProcess stands for every actor of context dst.
type remoteProcess struct {
	r   *Router
	dst uint32
}

func (p *remoteProcess) SendUserMessage(pid *actor.PID, message interface{}) {
	_, msg, sender := actor.UnwrapEnvelope(message)
	p.send(pid, msg, sender, 0)
}

// SendSystemMessage takes the system messages protoactor sends to a PID:
// Stop, and Watch and Unwatch from an actor watching it (see watch.go).
func (p *remoteProcess) SendSystemMessage(pid *actor.PID, message interface{}) {
	switch m := message.(type) {
	case *actor.Stop:
		p.Stop(pid)
	case *actor.Watch:
		p.r.watchRemote(p.dst, pid, m.Watcher)
	case *actor.Unwatch:
		p.r.unwatchRemote(p.dst, pid, m.Watcher)
	default:
		p.r.logger.Debug("system message to a remote actor not supported", "pid", pid.String(), "type", typeName(message))
	}
}

func (p *remoteProcess) Stop(pid *actor.PID) {
	h := messages.Header{Kind: messages.KindActor, Flags: messages.FlagSystem, Dst: p.dst, Src: p.r.id, Target: pid.Id, Type: typeStop}
	_ = p.r.send(&h, nil)
}

func (p *remoteProcess) send(pid *actor.PID, msg any, sender *actor.PID, flags uint8) {
	r := p.r
	name, payload, err := messages.EncodeTyped(msg)
	if err != nil {
		r.logger.Error("actor message not sent", "to", pid.String(), "error", err)
		return
	}
	h := messages.Header{Kind: messages.KindActor, Flags: flags, Dst: p.dst, Src: r.id, Target: pid.Id, Type: name}
	if sender != nil {
		addr := sender.Address
		if _, ok := parseAddress(addr); !ok {
			addr = addressOf(r.id) // a local PID made before the address was set
		}
		h.Sender = addr + "/" + sender.Id
	}
	if err := r.send(&h, payload); err != nil {
		r.logger.Warn("actor message not sent", "to", pid.String(), "error", err)
		if sender != nil {
			r.system.Root.Send(sender, &actor.DeadLetterResponse{Target: pid})
		}
	}
}

// deliverSystem hands a system envelope to the local actor it names, each
// under its own policy: a stop only from above; a watch from below only to
// an actor allowed upward; a Terminated only for a watch made from here.
func (r *Router) deliverSystem(h messages.Header, payload []byte, fromBelow bool) {
	r.ensureSystem()
	switch h.Type {
	case typeStop:
		if fromBelow {
			r.logger.Warn("system message from below refused", "from", r.table.Load().name(h.Src), "target", h.Target)
			return
		}
		r.system.Root.Stop(actor.NewPID(addressOf(r.id), h.Target))
	case typeWatch, typeUnwatch:
		r.deliverWatch(h, payload, fromBelow)
	case typeTerminated:
		r.deliverTerminated(h, payload)
	default:
		r.logger.Warn("unknown system message dropped", "type", h.Type, "from", r.table.Load().name(h.Src))
	}
}

// deliverActor hands an actor envelope to the local actor it names. Its
// sender must be in its source context.
func (r *Router) deliverActor(h messages.Header, payload []byte) {
	r.ensureSystem()
	pid := actor.NewPID(addressOf(r.id), h.Target)
	var sender *actor.PID
	if h.Sender != "" {
		addr, id, ok := strings.Cut(h.Sender, "/")
		if src, valid := parseAddress(addr); !ok || !valid || src != h.Src {
			r.logger.Warn("actor message with a sender outside its source dropped", "sender", h.Sender, "src", h.Src)
			return
		}
		sender = actor.NewPID(addr, id)
	}
	msg, err := messages.DecodeTyped(h.Type, payload)
	if err != nil {
		r.logger.Error("actor message dropped", "target", h.Target, "error", err)
		return
	}
	proc, ok := r.system.ProcessRegistry.GetLocal(h.Target)
	if !ok {
		r.logger.Debug("actor message to an unknown actor", "target", h.Target)
		if sender != nil {
			r.system.Root.Send(sender, &actor.DeadLetterResponse{Target: pid})
		}
		return
	}
	if sender == nil {
		proc.SendUserMessage(pid, msg)
		return
	}
	proc.SendUserMessage(pid, &actor.MessageEnvelope{Message: msg, Sender: sender})
}

func typeName(v any) string {
	if n, ok := messages.TypeName(v); ok {
		return n
	}
	return "unregistered"
}
