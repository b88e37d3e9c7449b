package main

// ssh_floor: the bare floor of a call over ssh, to set ssh_call beside: the
// same small frames (a 4-byte length, then msgpack), written into an SSH
// session (golang.org/x/crypto/ssh, as mitogo's) running `cat` on the same
// sshd, and read back as cat echoes them. No routing, no runtime.

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/mitogo/mitogo/test/peer/internal/peerkit"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshFloor puts ssh_floor_us in res, beside ssh_call_us (run with it).
func sshFloor(cfg sshConfig, res peerkit.Result) {
	key, err := os.ReadFile(*sshKey)
	must(err)
	signer, err := ssh.ParsePrivateKey(key)
	must(err)
	hostKey, err := knownhosts.New(*sshKnown)
	must(err)
	client, err := ssh.Dial("tcp", net.JoinHostPort(*sshHost, strconv.Itoa(*sshPort)), &ssh.ClientConfig{
		User: *sshUser, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hostKey,
	})
	must(err)
	defer client.Close()
	sess, err := client.NewSession()
	must(err)
	defer sess.Close()
	in, err := sess.StdinPipe()
	must(err)
	stdout, err := sess.StdoutPipe()
	must(err)
	must(sess.Start("exec cat"))
	out := bufio.NewReader(stdout)
	var hdr [4]byte
	call := func(v any) (any, error) {
		body, err := msgpack.Marshal(v)
		if err != nil {
			return nil, err
		}
		frame := append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
		if _, err := in.Write(frame); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(out, hdr[:]); err != nil {
			return nil, err
		}
		echo := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(out, echo); err != nil {
			return nil, err
		}
		var got any
		err = msgpack.Unmarshal(echo, &got)
		return got, err
	}
	samples, total := peerkit.TimeCalls(cfg.calls, call)
	peerkit.PutCalls(res, "ssh_floor", samples, total)
	in.Close()
}
