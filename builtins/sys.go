package builtins

import (
	"context"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/mitogo/mitogo/actors"
)

// FactsRequest is sys.facts' argument; it has no fields yet.
type FactsRequest struct{}

// FactsResult describes the system and process a context runs in.
type FactsResult struct {
	Hostname string  `msgpack:"hostname" json:"hostname"`
	OS       string  `msgpack:"os" json:"os"`
	Arch     string  `msgpack:"arch" json:"arch"`
	Kernel   string  `msgpack:"kernel" json:"kernel"` // uname -r
	Uptime   float64 `msgpack:"uptime" json:"uptime"` // seconds since boot, 0 when unknown
	User     string  `msgpack:"user" json:"user"`     // user name, or the uid when it has none
	UID      int     `msgpack:"uid" json:"uid"`
	PID      int     `msgpack:"pid" json:"pid"`
	Context  string  `msgpack:"context" json:"context"` // the context's name, e.g. "local.1/local.2"
}

// Facts is sys.facts: hostname, OS, kernel, uptime, user and process of the
// context it runs in.
var Facts = actors.Register("sys.facts", facts)

func facts(ctx context.Context, _ FactsRequest) (FactsResult, error) {
	f := FactsResult{OS: runtime.GOOS, Arch: runtime.GOARCH, UID: os.Getuid(), PID: os.Getpid()}
	var err error
	if f.Hostname, err = os.Hostname(); err != nil {
		return FactsResult{}, err
	}
	var u syscall.Utsname
	if err := syscall.Uname(&u); err == nil {
		f.Kernel = utsString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if fields := strings.Fields(string(b)); len(fields) > 0 {
			f.Uptime, _ = strconv.ParseFloat(fields[0], 64)
		}
	}
	f.User = strconv.Itoa(f.UID)
	if u, err := user.LookupId(f.User); err == nil {
		f.User = u.Username
	}
	if r := actors.RouterFrom(ctx); r != nil {
		f.Context = r.Name()
	}
	return f, nil
}

// utsString converts a NUL-terminated utsname field ([]int8 or []uint8,
// depending on the architecture) to a string.
func utsString[T int8 | uint8](field []T) string {
	b := make([]byte, 0, len(field))
	for _, c := range field {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
