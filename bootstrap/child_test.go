package bootstrap

import (
	"os"
	"testing"

	"github.com/mitogo/mitogo/transport"
)

func TestDetectRemovesMarker(t *testing.T) {
	t.Setenv(transport.EnvChild, "fd:3")
	spec, ok := Detect()
	if !ok || spec != "fd:3" {
		t.Fatalf("Detect = %q, %v", spec, ok)
	}
	if _, still := os.LookupEnv(transport.EnvChild); still {
		t.Fatal("marker left in the environment")
	}
	if _, ok := Detect(); ok {
		t.Fatal("second Detect found the marker")
	}
}

func TestOpenStreamRefusesBadSpecs(t *testing.T) {
	for _, spec := range []string{"tcp", "fd:x", "fd:1", "fd:987654"} {
		if _, err := OpenStream(spec); err == nil {
			t.Errorf("OpenStream(%q) succeeded", spec)
		}
	}
}
