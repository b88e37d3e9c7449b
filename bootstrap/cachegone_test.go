package bootstrap

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// onLine is a reader that calls hook with each line read through it, once
// its newline is read: readUntil reads a byte at a time, so the hook runs
// before the master answers the line.
type onLine struct {
	r    io.Reader
	line []byte
	hook func(string)
}

func (o *onLine) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	for _, b := range p[:n] {
		if b != '\n' {
			o.line = append(o.line, b)
			continue
		}
		o.hook(string(o.line))
		o.line = o.line[:0]
	}
	return n, err
}

// The far side's cache directory removed (by another process, a user's rm
// -rf ~/.cache) after stage 1 listed its builds and before the delta to
// one of them lands: stage 1 reads the delta all the same and says why it
// cannot go on, and the master's error gives the cause and the directory;
// no shell error ("[: Illegal number") in between. The same when it is
// removed before the answer to the hash: no upload is attempted.
func TestStage1CacheDirRemovedMidConnect(t *testing.T) {
	v1 := patchingChild(t, "gone-one", false) // builds no other test sends
	v2 := patchingChild(t, "gone-two", false)
	for _, sh := range shells(t) {
		for _, when := range []string{"need", "MITOGO1 "} {
			t.Run(filepath.Base(sh[0])+"/after "+strings.TrimSpace(when), func(t *testing.T) {
				home := t.TempDir()
				env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
				if _, err := runStage1(t, sh, env, v1, nil); err != nil {
					t.Fatal(err)
				}
				dir := filepath.Join(home, ".cache", "mitogo")
				cmd := exec.Command(sh[0], append(sh[1:], "-c", Stage1())...)
				cmd.Env = env
				in, _ := cmd.StdinPipe()
				out, _ := cmd.StdoutPipe()
				var stderr strings.Builder
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				removed := false
				r := &onLine{r: out, hook: func(l string) {
					if strings.HasPrefix(l, when) && !removed {
						removed = true
						if err := os.RemoveAll(dir); err != nil {
							t.Error(err)
						}
					}
				}}
				res, err := Run(context.Background(), shellConn{r, in}, v2, nil, Options{NoForms: true})
				in.Close()
				cmd.Wait()
				if !removed {
					t.Fatalf("stage 1 printed no %q line: %+v %v", when, res, err)
				}
				if !errors.Is(err, ErrCacheGone) || !strings.Contains(err.Error(), dir) {
					t.Errorf("error %v; want ErrCacheGone naming %s", err, dir)
				}
				if s := stderr.String(); s != "" {
					t.Errorf("stage 1's stderr: %q", s)
				}
			})
		}
	}
}
