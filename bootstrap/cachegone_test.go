package bootstrap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// onLine returns a reader of what r reads that calls hook with each line
// as soon as it comes, before the master reads it: a goroutine reads r
// into a buffer, whatever the master does; stop ends it once r is at its
// end.
func onLine(r io.Reader, hook func(string)) (io.Reader, func()) {
	q := &lineQueue{}
	q.cond = sync.NewCond(&q.mu)
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReader(r)
		for {
			l, err := br.ReadString('\n')
			if strings.HasSuffix(l, "\n") {
				hook(strings.TrimSuffix(l, "\n"))
			}
			q.mu.Lock()
			q.buf.WriteString(l)
			if err != nil {
				q.err = err
			}
			q.cond.Broadcast()
			q.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return q, func() { <-done }
}

// lineQueue is what onLine read and the master has not.
type lineQueue struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  bytes.Buffer
	err  error
}

func (q *lineQueue) Read(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.buf.Len() == 0 && q.err == nil {
		q.cond.Wait()
	}
	if q.buf.Len() > 0 {
		return q.buf.Read(p)
	}
	return 0, q.err
}

// deltaLine is the line that starts a delta (see stage1).
var deltaLine = regexp.MustCompile(`^[0-9]+ [0-9a-f]{64}\n`)

// heldDelta is a writer that holds the delta's line until open is closed.
type heldDelta struct {
	io.Writer
	open <-chan struct{}
}

func (h heldDelta) Write(p []byte) (int, error) {
	if deltaLine.Match(p) {
		select {
		case <-h.open:
		case <-time.After(30 * time.Second): // only against a hang
			return 0, errors.New("the delta was held for 30 s")
		}
	}
	return h.Writer.Write(p)
}

// The far side's cache directory removed (by another process, a user's rm
// -rf ~/.cache) after stage 1 listed its builds and before the delta to
// one of them lands (the test holds the delta until the directory is
// gone): stage 1 reads the delta all the same and says why it
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
				p := startStage1(t, append(sh[:len(sh):len(sh)], "-c", Stage1()), env)
				removed := make(chan struct{})
				r, stop := onLine(p.out, func(l string) {
					if strings.HasPrefix(l, when) {
						select {
						case <-removed:
						default:
							// Stage 1 waits for the master's next line.
							if err := os.RemoveAll(dir); err != nil {
								t.Error(err)
							}
							close(removed)
						}
					}
				})
				res, err := Run(context.Background(), shellConn{r, heldDelta{p.in, removed}}, v2, nil, Options{NoForms: true})
				p.in.Close()
				stop()
				p.cmd.Wait()
				select {
				case <-removed:
				default:
					t.Fatalf("stage 1 printed no %q line: %+v %v", when, res, err)
				}
				if !errors.Is(err, ErrCacheGone) || !strings.Contains(err.Error(), dir) {
					t.Errorf("error %v; want ErrCacheGone naming %s", err, dir)
				}
				if s := p.stderr.String(); s != "" {
					t.Errorf("stage 1's stderr: %q", s)
				}
			})
		}
	}
}
