package fakessh

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/mitogo/mitogo/actors"
)

func init() { actors.RegisterHelper(EnvSocket, standIn) }

// standIn is this program run as ssh by a tool: it hands its command line
// to the Server named by MITOGO_FAKESSH and relays stdin, stdout, stderr
// and the exit status. Like ssh, it exits 255 when the connection fails.
// It is this program started by the name the Server gave it (a link in the
// Server's directory), and declines otherwise: what the tool starts (a git
// hook running another mitogo program) inherits the variable too.
func standIn() (int, bool) {
	sock := os.Getenv(EnvSocket)
	if filepath.Dir(os.Args[0]) != filepath.Dir(sock) {
		return 0, false
	}
	return relay(sock), true
}

// relay speaks for the tool to the Server at sock.
func relay(sock string) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "mitogo fakessh: "+format+"\n", args...)
		return 255
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		return fail("reaching the mitogo program that runs the tool: %v", err)
	}
	defer c.Close()
	body, _ := json.Marshal(request{Args: os.Args[1:]})
	if err := writeFrame(c, frameRequest, body); err != nil {
		return fail("%v", err)
	}
	// Stdin goes no further ahead of the command than the server's credit.
	var credit atomic.Int64
	more := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			for credit.Load() <= 0 {
				<-more
			}
			n, err := os.Stdin.Read(buf[:min(int64(len(buf)), credit.Load())])
			if n > 0 {
				credit.Add(-int64(n))
				if writeFrame(c, frameStdin, buf[:n]) != nil {
					return
				}
			}
			if err != nil {
				writeFrame(c, frameStdinEOF, nil)
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		typ, data, err := readFrame(c, buf)
		if err != nil {
			if err == io.EOF {
				return fail("the mitogo program ended the connection before the command's exit status")
			}
			return fail("%v", err)
		}
		switch typ {
		case frameStdout:
			if _, err := os.Stdout.Write(data); err != nil {
				return fail("writing stdout: %v", err)
			}
		case frameStderr:
			os.Stderr.Write(data)
		case frameCredit:
			if len(data) == 4 {
				credit.Add(int64(binary.BigEndian.Uint32(data)))
				select {
				case more <- struct{}{}:
				default:
				}
			}
		case frameExit:
			if len(data) != 4 {
				return fail("malformed exit status")
			}
			return int(binary.BigEndian.Uint32(data))
		case frameError:
			return fail("%s", data)
		}
	}
}
