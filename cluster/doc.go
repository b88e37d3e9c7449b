// Package cluster runs several mitogo controllers as one cluster over
// NATS: each controller owns a share of an inventory's hosts, any member
// or client calls a function on any host by name, and the hosts of a
// controller that dies come back on the others by themselves.
//
// # Topology
//
// The members meet in a NATS server with JetStream (2.11 or later: host
// leases age out with limit markers that tell the survivors at once).
// One machine needs nothing installed: the mitogo-nats command is an
// embedded server that listens on 127.0.0.1 and admits only clients with
// the cluster's token; several mitogo-nats given each other as routes form
// a routed JetStream cluster (use Config.Replicas 3), so that losing any
// one server loses neither the leases nor the members' meeting point. A
// real NATS deployment works the same: give its URLs.
//
//	mitogo-nats ──┬── controller a (mitogo serve) ── contexts ── hosts
//	 (JetStream)  ├── controller b (mitogo serve) ── contexts ── hosts
//	              ├── controller c (mitogo serve) ── contexts ── hosts
//	              └── clients (mitogo run/call --nats, Client)
//
// So that no one machine or process is needed by all, run three
// mitogo-nats as a routed cluster and give each controller its own:
//
//	mitogo-nats n1 ══ routes ══ mitogo-nats n2 ══ routes ══ mitogo-nats n3
//	(each: --name, --cluster-listen, --routes to the other two)
//	     │                          │                          │
//	controller a               controller b               controller c
//	(serve --nats n1           (--nats n2 ...)            (--nats n3 ...)
//	 --replicas 3)
//
// The buckets then keep three replicas, one per server. Killing one server
// together with its controller (SIGKILL, a machine lost) leaves two
// replicas, a quorum: the two other controllers keep dispatching to their
// hosts, and take the dead controller's hosts over once their leases age
// out. While the replicas elect a new leader for a bucket (a few
// seconds), leases can be neither renewed nor read: a controller gives up
// the hosts whose renewal failed, and they are claimed again, by it or
// another, once the bucket answers (TestRoutedCluster measures about 10 s
// from the kill until every host is driven again, with a 3 s lease TTL).
// A controller given all three URLs reconnects to another server when
// its own dies; clients should be given all three.
//
// The server is a separate command because a controller uploads its own
// binary to its hosts: the mitogo binary carries the NATS client only,
// never the 17 MB server (package natsembed).
//
// # Ownership
//
// A host is owned through a lease in the KV bucket mitogo_CLUSTER_hosts,
// key the host's name: a controller claims it with Create, which fails
// when a lease exists (compare-and-set), and renews it every third of the
// lease TTL while its context to the host is healthy. The lease's epoch
// is the revision that created it, in the bucket's generation (see "Losing
// the NATS store"). Ownership is sticky: a member claims
// only hosts without a lease, so a member that joins takes none from the
// others; hosts that have no owner go first to their preferred member
// among the live ones (rendezvous hashing over mitogo_CLUSTER_members:
// the highest SHA-256 of host and member name),
// and to any member after half a TTL. A controller that closes releases
// its leases, so its hosts move at once; one that is killed loses them
// when they age out, within one TTL, and the survivors, watching the
// bucket, reconnect the hosts then (eagerly, not on the next call; a
// watch that ends, as nats.go ends one it cannot recreate after a NATS
// server restart, is started again and its listing replaces the view). Hosts
// move between live members only on purpose, by a drain or a rebalance.
//
// # Drain and rebalance
//
// Each member takes control requests on mitogo.CLUSTER.member.ID
// (Client.Drain, Client.Resume, Client.Rebalance; mitogo cluster drain,
// resume, rebalance). A member acknowledges a request at once, then works
// on it and replies. The request carries the deadline of its
// acknowledgement (HandoverOptions.Answer, 30s by default; the sender's
// clock against the member's): a member that does not acknowledge it by
// then (stopped, frozen, cut off from NATS) fails the request with
// ErrNoAnswer naming it, and ignores it if it gets it later, so that an
// operator who gave up on a drain does not find it applied when the member
// wakes. A host is handed over in this order: its owner
// refuses new calls to it (ErrNotOwner: they did not run; with the lease
// still its own, no other member runs them either), unsubscribes, lets the
// calls in flight finish (those still running after the grace, 30s by
// default, are cancelled and their callers told), shuts the host's context
// down (and the hops of its chain before it that the Connector named with
// Hops, but those another host it drives goes through), writes why into the lease and deletes it; the preferred member
// claims it at once and reconnects it. A call is therefore never run by
// two members, and a call sent between the old owner's unsubscription and
// the new owner's subscription reaches nobody: it waits for the new owner
// (see Dispatch). (When the preferred member does not have the host,
// another claims it after half a TTL.)
//
// Drain hands every host of a member over; the member then claims nothing
// (its entry says draining, and the others leave it out of the
// preference) until Resume or its exit. It refuses (ErrLastMember) to
// drain a member when no other member is active (live and not draining),
// as its hosts would be left with no controller, unless
// HandoverOptions.Force. Rebalance moves hosts from the
// members that hold more than their share to those that hold less: each
// host to its preferred member among the live ones, only while its owner
// holds at least two more hosts than that member, a batch at a time (4 by
// default), the next batch only once the last one is held again, so a
// member that joined gets its share without a reconnect storm. A member
// does not claim again for two TTLs a host it handed to another.
//
// # Inventory changes
//
// With Config.InventoryFile, a controller checks the file's size and
// modification time every Config.ReloadInterval (2s by default; mitogo
// serve --reload-interval), and at once on Controller.Reload (SIGHUP to
// mitogo serve); when its content's hash changed it reads it again and
// applies it (Controller.SetHosts): new hosts become claimable, removed
// hosts are handed over as above (another member claims them if it has
// them) and their contexts shut down, and hosts whose chain or settings
// changed are handed over and claimed again over the new chain. A file
// that does not parse changes nothing.
//
// # Status and builds
//
// Client.Status (mitogo cluster status) reads the member and lease
// buckets: every member with its build, protocol version, hosts, whether
// it is draining and the last host it took from another; every lease with
// its owner, epoch, age and last renewal; and the cluster's last failover
// and last move (which host, from which member to which, why, when).
// Members on different builds work together as long as they speak the
// same ProtocolVersion; a controller that finds a member of another
// protocol refuses to join (ErrVersion, naming that member), and a call or
// control request of another protocol is refused with ErrVersion.
//
// A busy machine or NATS makes things slower, never unstable: the bucket
// alone says who holds a lease. Renewals run on a goroutine of their own;
// a write that fails or answers late is tried again, and one that landed
// unseen is recognized (the value is its owner's alone), so a lease is
// lost only when the bucket holds no lease or another one. A lease that
// aged out because its renewals came too late goes first to its owner, if
// it is still a live member: it claims it again under the same epoch and
// keeps its context to the host instead of the host being connected
// anew. A member whose connect to a host failed does not claim that host
// again for a jittered backoff (half a TTL, doubling, up to eight TTLs),
// so that another member can take it; an inventory change of that host
// (Controller.SetHosts) clears its backoff and deletes the lease the
// failed connect left to lapse, so that the corrected host is claimed at
// once. Each member advertises in its member entry the hosts whose last
// connect from it failed, when and why (Member.ConnectErrors, cleared by
// a connect that works): Status lists them, and a call that finds no
// owner for such a host fails with a NoConnectError (an ErrNoOwner)
// naming the cause and the member. Close cancels connects in flight
// and does not wait for one past its context.
//
// # Dispatch
//
// A call to a host goes to the subject mitogo.CLUSTER.host.HOST, which
// only the owner subscribes to. The owner accepts it at once (the caller
// now knows the controller, and listens to no other); a controller that
// may have lost the lease (cut off from NATS, or paused, past two thirds
// of a TTL without a renewal) stays silent, so that the new owner, which
// subscribes too, answers. The owner checks that the lease in the bucket is still
// its own with its epoch, runs the function in the host's context, sends
// beats while it runs, and replies with the result. Errors are
// *HostError naming the host and the controller. A call whose controller
// goes silent after accepting it, or dies, or whose host context ends
// under it, fails with ErrOutcomeUnknown; nothing that reached a
// controller is retried. A call that reached nobody (NATS answers that the
// subject has no subscriber: the host is between owners, in a handover or
// a failover) did not run, and is sent again, after a pause growing to
// half a second, while the host's lease leaves a trace in the bucket (the
// lease, or the record of its release or expiry, kept a TTL): until the
// caller's deadline, or for two lease TTLs when it has none. Then, or at
// once for a host no member has held within a TTL, it fails with
// ErrNoOwner (also ErrNoCluster when no member ever joined the cluster).
//
// A streamed run (Client.Run, mitogo run --nats) is a command whose
// output comes back while it runs: the owner's accept names a control
// subject of the run's own; the owner publishes output items to the
// caller's inbox as the command writes them, and the caller sends its
// stdin, acknowledgements, beats and a cancel to the control subject.
// Items are numbered both ways (a lost one is seen, and the run ends
// with ErrOutcomeUnknown) and at most 64 are unacknowledged each way, so
// a slow reader slows the command (its pipe fills) rather than filling
// memory. The final reply carries the exit status and the number of the
// last item. A caller that cancels, or is silent for a few seconds (its
// process killed), has its command killed with its process group.
//
// # Fencing
//
// Every dispatch checks the lease held (above); a controller that loses
// its NATS connection stops dispatching at once, and one whose last
// renewal is two thirds of a TTL old too. Because a paused controller can
// wake after its lease expired, the host checks as well: an owner's
// context takes the host's token (the generation and epoch) in a file of
// the host account's cache directory (mitogo-cluster/CLUSTER/HOST.epoch:
// "GEN EPOCH", or "EPOCH" alone in generation 0, as builds before
// generations wrote it), every call carries the token and is refused
// (ErrFenced) unless the host holds it, and a context that sees a newer
// token exits as one whose parent is lost does (actors.ExitOrphaned): what
// its functions started, a command of mitogo run among them, is killed
// with it, not left running beside the new owner's calls. Tokens order by
// generation, then epoch.
//
// # Losing the NATS store
//
// The leases and the member entries live in JetStream, in the server's
// store. mitogo-nats keeps it on disk (file storage, in --store,
// ~/.local/state/mitogo-nats by default), and the controllers create their
// buckets with file storage: restarting a server, or a routed cluster
// losing one server of three, loses nothing. A server whose store is lost
// (a new --store directory or a wiped one, a NATS configured with memory
// storage only, a new NATS cluster) comes back without the buckets. Each
// member checks every third of a lease TTL, and when its lease watch
// ends, that the buckets exist, and creates a missing one; members that
// do so at once all end up on the one bucket JetStream keeps under that
// name. Each logs "lease bucket lost (NATS store reset?); recreated" at
// Warn (or "recreated by another member"). The leases are gone with the
// bucket: each member claims again the hosts it drove, keeping their
// contexts and tokens, and the others leave it a lease TTL to do so before
// they claim them; dispatch resumes as soon as a host's lease is held
// again.
//
// The new bucket numbers its revisions from 1 again, while the hosts hold
// tokens taken in the lost one. So a token is the lease bucket's
// generation, then the epoch: the generation is the time JetStream
// created the bucket, in nanoseconds (kept in the store with it). A new
// owner's token then outranks every token of the lost bucket, and a
// paused owner from before the loss is refused and its context exits
// once the new owner took the token, as within one bucket. This relies on
// the clock of the NATS server that creates the new bucket (the meta
// leader's, in a routed cluster): one set back before the lost bucket's
// creation would give an older generation, and the new owners would be
// refused (ErrFenced) until the token files were deleted. A token file
// written before generations holds generation 0: any bucket's tokens
// outrank it.
//
// Use persistent storage all the same: until a host's lease is held
// again, calls to it are refused (ErrNotOwner) or wait for an owner, and
// a host whose owner died meanwhile waits a lease TTL for another.
//
// # Security
//
// Controllers and clients authenticate with the cluster's token (from a
// file or the environment, never a command line). Calls run registered
// functions only, under mitogo's usual policy in each context.
package cluster
