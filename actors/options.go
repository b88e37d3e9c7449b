package actors

import (
	"log/slog"
	"time"

	"github.com/mitogo/mitogo/connect"
	"github.com/mitogo/mitogo/messages"
	"github.com/mitogo/mitogo/transport"
)

// Option configures a Router.
type Option func(*config)

type config struct {
	logger   *slog.Logger
	logLevel slog.Level
	maxFrame int
	upward   []string
	sideways bool

	uploadProgress func(UploadProgress) // see WithUploadProgress
}

func defaultConfig() config {
	return config{maxFrame: messages.DefaultMaxFrame, logLevel: slog.LevelInfo}
}

// WithLogger sends every log record of the tree, the master's and those
// forwarded from children (with a "context" attribute naming the context),
// to l. The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithLogLevel sets the level below which children drop records before
// forwarding them (default slog.LevelInfo).
func WithLogLevel(l slog.Level) Option { return func(c *config) { c.logLevel = l } }

// MaxMessageSize sets the largest message, in bytes, that any context of
// the tree sends or accepts (default 128 MiB). Every descendant inherits it.
func MaxMessageSize(n int) Option { return func(c *config) { c.maxFrame = n } }

// AllowUpward lets descendants call the named functions in their ancestors
// (the master included). By default a child may call nothing upward.
func AllowUpward(functions ...string) Option {
	return func(c *config) { c.upward = append(c.upward, functions...) }
}

// AllowSideways lets routers forward calls and actor messages between
// sibling subtrees, so a context may call another that is not its
// descendant. By default such calls are refused.
func AllowSideways() Option { return func(c *config) { c.sideways = true } }

// ConnectOption configures one connection (Local, and the remote methods).
type ConnectOption func(*connectConfig)

type connectConfig struct {
	via        *Context
	name       string
	timeout    time.Duration
	strategy   Strategy
	path       string
	args       []string
	user       string
	tool       string
	password   string
	ssh        transport.SSHSpec
	sshArgs    []string
	noCache    bool
	binaries   map[string]string
	binaryFunc func(string) (string, error)

	preserveEnv bool
	login       bool

	target      string   // container, pod, PID or directory (see connect.Spec.Target)
	toolEnv     []string // see ToolEnv
	namespace   string   // see Namespace
	kubeContext string   // see KubeContext

	heartbeat    heartbeatConfig // see Heartbeat
	heartbeatSet bool            // Heartbeat was given
	given        connect.Option  // the method-dependent options given, checked against the method
}

func defaultConnectConfig() connectConfig {
	return connectConfig{timeout: 30 * time.Second, strategy: Stop()}
}

// Via makes the connection from parent: the new context is parent's child,
// and parent runs the connection method. Local(ctx, Via(c1)) is a grandchild.
func Via(parent *Context) ConnectOption { return func(c *connectConfig) { c.via = parent } }

// Name sets the last element of the context's name. The defaults are
// "local.<id>", "sudo:<user>" (su, doas alike) and "ssh:[user@]host[:port]"
// (the port when it is not 22, an IPv6 host in brackets), after the name
// of the context it is made from: "ssh:web1/sudo:root".
//
// A name identifies one live context: when a context that is not gone for
// good (connecting, up or restarting) already has the full name, given or
// default, the new one gets "#<id>" appended ("x#7", "sudo:root#4"), so
// that log records and Debug never name two contexts alike. Duplicates
// are suffixed rather than refused because default names collide without
// a mistake (two connections to one host) and a restarted or reconnected
// context must not need a new name; the name a context got is its Name().
// Errors (StreamError, TimeoutError, ChannelError, CallError) name a
// context as its options did, hop by hop, without the suffixes: "x",
// "sudo:root/local.5", so that they say what the user wrote.
func Name(name string) ConnectOption { return func(c *connectConfig) { c.name = name } }

// ConnectTimeout bounds the whole connection, from starting the process to
// the child's handshake (default 30s). Passing it is a *TimeoutError.
func ConnectTimeout(d time.Duration) ConnectOption {
	return func(c *connectConfig) { c.timeout = d }
}

// Supervise chooses what happens when the context dies: Stop() (the
// default), Restart(...), or any protoactor SupervisorStrategy, whose
// Decider sees the *ChannelError of the lost process (see Strategy). The
// Router's broker supervises the context's actor with it.
func Supervise(s Strategy) ConnectOption { return func(c *connectConfig) { c.strategy = s } }

// Executable starts path instead of this program's own executable, with
// args. The program must call actors.Main first, as this one does.
func Executable(path string, args ...string) ConnectOption {
	return func(c *connectConfig) { c.path, c.args, c.given = path, args, c.given|connect.OptExecutable }
}
