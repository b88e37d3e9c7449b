// Package fakessh lets programs that speak through ssh — rsync, scp, git —
// reach any context of a mitogo tree, however it was reached (ssh → sudo,
// su, a local child), as Mitogen's fakessh does.
//
// A Server listens on a Unix socket in a private 0700 directory. Tools are
// given this program as their ssh (rsync -e, scp -S, GIT_SSH) with the
// socket in MITOGO_FAKESSH; started so, the program (in actors.Main) is an
// ssh stand-in: it sends its command line over the socket and relays its
// stdin, stdout, stderr and exit status, while the Server runs the remote
// command with /bin/sh in the context the host name selects, through the
// proc.run built-in. Nothing is installed on the far side; the tool at the
// far end (rsync, scp, sftp-server, git-upload-pack) must be there, as with
// real ssh.
//
//	srv, err := fakessh.Serve(r, target) // target answers every host name
//	defer srv.Close()
//	cmd := srv.Command("rsync", "-a", "-e", srv.Program(), "site/", "target:/var/www/")
//	err = cmd.Run()
package fakessh
