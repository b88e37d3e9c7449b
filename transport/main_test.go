package transport

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts through this package must have ended
// when the tests do.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
