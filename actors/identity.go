package actors

import "sync"

// The process's identity in the tree, set once when it starts serving as
// a child: Mitogen's module globals is_master, context_id and parent_id.
var identity struct {
	sync.RWMutex
	child      bool
	id, parent uint32
}

func setIdentity(id, parent uint32) {
	identity.Lock()
	defer identity.Unlock()
	identity.child, identity.id, identity.parent = true, id, parent
}

// IsMaster reports whether this process is the master: it was not started
// as a child context.
func IsMaster() bool {
	identity.RLock()
	defer identity.RUnlock()
	return !identity.child
}

// ContextID is this process's context id (0 in the master).
func ContextID() int {
	identity.RLock()
	defer identity.RUnlock()
	return int(identity.id)
}

// ParentID is the id of the context that started this process (0 in the
// master, which has no parent).
func ParentID() int {
	identity.RLock()
	defer identity.RUnlock()
	return int(identity.parent)
}
