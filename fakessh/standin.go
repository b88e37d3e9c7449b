package fakessh

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/mitogo/mitogo/actors"
)

func init() { actors.RegisterHelper(EnvSocket, standIn) }

// standIn is this program run as ssh by a tool: it hands its command line
// to the Server named by MITOGO_FAKESSH and relays stdin, stdout, stderr
// and the exit status. Like ssh, it exits 255 when the connection fails.
func standIn() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "mitogo fakessh: "+format+"\n", args...)
		return 255
	}
	sock := os.Getenv(EnvSocket)
	c, err := net.Dial("unix", sock)
	if err != nil {
		return fail("reaching the mitogo program that runs the tool: %v", err)
	}
	defer c.Close()
	body, _ := json.Marshal(request{Args: os.Args[1:]})
	if err := writeFrame(c, frameRequest, body); err != nil {
		return fail("%v", err)
	}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := os.Stdin.Read(buf)
			if n > 0 {
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
