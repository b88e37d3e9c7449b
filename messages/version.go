package messages

import (
	"errors"
	"fmt"
)

// ErrVersion is matched (with errors.Is) by every *VersionError.
var ErrVersion = errors.New("protocol version mismatch")

// VersionError reports two ends of a stream that share no protocol
// version.
type VersionError struct {
	PeerMin, PeerMax int // the versions the peer speaks
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("protocol version mismatch: the peer speaks %s, this binary %s",
		versionRange(e.PeerMin, e.PeerMax), versionRange(MinProtocolVersion, ProtocolVersion))
}

// Is reports whether target is ErrVersion.
func (e *VersionError) Is(target error) bool { return target == ErrVersion }

func versionRange(lo, hi int) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d to %d", lo, hi)
}

// ChooseVersion picks the protocol version for a stream whose peer speaks
// versions lo to hi: the highest one this package speaks too, or a
// *VersionError when there is none.
func ChooseVersion(lo, hi int) (int, error) {
	v := min(hi, ProtocolVersion)
	if v < max(lo, MinProtocolVersion) {
		return 0, &VersionError{PeerMin: lo, PeerMax: hi}
	}
	return v, nil
}
