package actors

// routeTable is an immutable snapshot of where messages go. The router
// actor builds a new one for every change and publishes it; stream readers
// and callers read the current one without a mailbox hop.
type routeTable struct {
	parent *conn            // default route upwards; nil in the master
	routes map[uint32]*conn // descendants, by the stream they are behind
	names  map[uint32]string
}

// lookup returns the stream towards dst, or nil when there is none. dst
// equal to this context's own id is the caller's business.
func (t *routeTable) lookup(dst uint32) *conn {
	if c, ok := t.routes[dst]; ok {
		return c
	}
	return t.parent
}

// owns reports whether id is in the subtree behind c.
func (t *routeTable) owns(c *conn, id uint32) bool {
	return t.routes[id] == c
}

// name returns the best known name of context id.
func (t *routeTable) name(id uint32) string {
	if n, ok := t.names[id]; ok {
		return n
	}
	if id == 0 {
		return "master"
	}
	return "context " + itoa(id)
}

// behind lists the contexts routed through c.
func (t *routeTable) behind(c *conn) []uint32 {
	var ids []uint32
	for id, rc := range t.routes {
		if rc == c {
			ids = append(ids, id)
		}
	}
	return ids
}

func (t *routeTable) clone() *routeTable {
	n := &routeTable{parent: t.parent, routes: make(map[uint32]*conn, len(t.routes)+1), names: make(map[uint32]string, len(t.names)+1)}
	for k, v := range t.routes {
		n.routes[k] = v
	}
	for k, v := range t.names {
		n.names[k] = v
	}
	return n
}

func itoa(id uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + id%10)
		id /= 10
		if id == 0 {
			return string(b[i:])
		}
	}
}
