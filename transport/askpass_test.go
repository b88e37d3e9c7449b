package transport

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// The helper's marker lines are counted and removed from what the far side
// printed, however the reads split them; a second one means a wrong password.
func TestAskpassMarkerRemovedFromOutput(t *testing.T) {
	a, err := NewAskpass("pw")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	m := string(a.marker)
	printed := m + "\nsudo: Sorry, try again.\n" + m + "\nsudo: 1 incorrect password attempt\n"
	wrong := 0
	r := a.Watch(io.NopCloser(iotest.OneByteReader(strings.NewReader(printed))), func() { wrong++ })
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := "sudo: Sorry, try again.\nsudo: 1 incorrect password attempt\n"; string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
	if a.Asked() != 2 || wrong != 1 {
		t.Fatalf("asked %d, onWrong called %d times", a.Asked(), wrong)
	}
}
