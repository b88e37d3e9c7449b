// Package sshtest starts real OpenSSH servers for tests.
//
// Start runs the system sshd (/usr/sbin/sshd) as a child of the test on a
// free port of 127.0.0.1 (or another address, see ListenAddr), with its own
// host key, a client key that may log in, a known_hosts file and a private
// sshd_config, all in a temporary directory. The server is stopped, and its
// log shown when the test failed, at the test's cleanup. Tests connect with
// the real ssh client (Server.SSHArgs) or with mitogo's SSH transport.
//
// sshd needs root to switch to the logged-in user, so Start skips the test
// when it is not root, when sshd is not installed or ssh-keygen is missing.
// With MITOGO_REQUIRE_PARTS=1 in the environment (test/run.sh sets it) a
// missing part fails the test instead, so CI cannot silently skip the SSH
// tests; `bash test/run.sh` installs openssh-server and openssh-client and
// creates the test user TestUser with the password TestPassword.
//
// Silent and ClosedPort give addresses for the failure cases: a listener
// that accepts but never speaks, and a port where nothing listens.
//
// NewTopology builds two Linux network namespaces, A reachable from the
// test and B reachable only from A, and Netns runs an sshd inside one of
// them: a host the test cannot reach itself, for multi-hop tests. It needs
// root and the ip command (package iproute2, which test/run.sh installs),
// and skips otherwise like Start.
//
// Pitfalls of sshd met here, handled by Start:
//
//   - sshd refuses to start without its privilege separation directory
//     /run/sshd (root-owned, not group or world writable); Start creates it.
//   - sshd must be run by absolute path (it re-executes itself per
//     connection), and its host key must be mode 0600.
//   - The temporary directory lies under the world-writable /tmp, which
//     StrictModes rejects, so the config says StrictModes no. sshd reads a
//     user's authorized_keys with that user's privileges, so for a user other
//     than root the key file is chowned to the user and the directories
//     above it are made traversable.
//   - UsePAM is always no: PAM stacks in containers often fail (for example
//     pam_loginuid without CAP_AUDIT_CONTROL). Password authentication then
//     checks /etc/shadow directly, which works for users made by chpasswd.
//   - OpenSSH 9.8 and later throttle sources that fail to authenticate
//     (PerSourcePenalties), which would make tests of failures interfere;
//     Start turns it off when the installed sshd knows the option.
//   - sshd is started with Pdeathsig, which the kernel ties to the thread
//     that started it, not the process: a Go thread that ends (a goroutine
//     exiting while locked to it) kills the sshd it happened to start. Work
//     inside a network namespace therefore returns its thread to the
//     test's namespace and unlocks it instead of letting it end.
package sshtest
