// Package files copies files and directory trees between the master and
// any context of the tree, however it was reached (ssh, then sudo, ...).
//
// Push copies a local file or tree to a context, Pull copies one from a
// context, and PushMany copies one source to many contexts with the bytes
// crossing each hop of the tree once: a context that is the via of several
// targets receives the data once and relays it to each of them.
//
// # How a transfer runs
//
// The data travels over an actors.Channel in chunks of 512 KiB. A channel
// has a bounded inbox with credit-based back-pressure; a transfer's
// channels have a window of 16 items, so a sender never runs more than 16
// chunks (8 MiB) ahead of its receiver, and every hop between them
// (routers forward frames as they come) holds no more than that: memory is bounded on every hop whatever the file's size, and no
// message comes near the maximum frame size.
//
// For each regular file the receiver first says what it already has: a
// destination file of the same size (with its sha256), or a partial file
// left by an interrupted transfer (with the sha256 of its prefix). The
// sender checks that hash against its own file: the same complete file
// is not sent at all (the entry is then changed only if its metadata is),
// and a partial file that matches is continued where it stops. The data
// is written to ".NAME.mitogo-part" beside the destination, its sha256 is
// compared with the sender's, and it is renamed over the destination
// atomically. A transfer that is interrupted keeps that file for the next
// one to continue; a transfer whose data does not match removes it.
// Two transfers to the same destination at once share that name: do not.
// Files are not fsynced before the rename, as with scp and rsync.
//
// Metadata: permission bits (with setuid, setgid, sticky), modification
// times of files and directories, and owner and group by name (the number
// when the name does not exist on the receiving side). Ownership is kept
// when the receiving side runs as root, or when PreserveOwner(true) asks
// for it; PreserveOwner(false) never changes it. Symbolic links are copied
// as links (their own times are not kept); devices, FIFOs and sockets are
// skipped. A source that is itself a symbolic link is followed.
//
// # Destinations
//
// The destination names the copy itself, so a second push of the same
// source finds what the first one wrote (and sends nothing):
// Push(ctx, c, "conf", "/etc/app/conf") makes /etc/app/conf, a file or a
// directory like conf; a directory already there is updated in place
// (its mode, times and kept owner become the source's). A destination
// ending in "/" names a directory to copy into: "/etc/app/" gives
// /etc/app/conf. A file (not a directory) whose destination is an
// existing directory, or a symbolic link to one, goes into it, as with
// cp: Push(ctx, c, "motd", "/etc") writes /etc/motd. A directory in the
// place of a file's copy is not replaced. The destination's parent
// directory must exist. On the receiving side every path stays inside
// the destination (an os.Root), so a sender cannot write elsewhere through
// ".." or a symbolic link it sent earlier.
//
// # Relaying
//
// PushMany asks each target for its parent and builds the part of the
// tree that leads to the targets. Every context on it with more than one
// way down (two targets below it, or a target below it and being one
// itself) runs files.receive as a relay: it takes each chunk once from
// above and sends it on to each of its branches, at the pace of the
// slowest. Resuming through a relay happens only when every target below
// it holds the same partial file.
package files
