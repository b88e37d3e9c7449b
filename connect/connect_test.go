package connect

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/mitogo/mitogo/bootstrap"
	"github.com/mitogo/mitogo/transport"
)

func method(t *testing.T, name string) *Method {
	t.Helper()
	m, ok := Lookup(name)
	if !ok {
		t.Fatalf("no method %q", name)
	}
	return m
}

func TestArgv(t *testing.T) {
	t.Setenv("LC_ALL", "")
	stage1 := "unset LC_ALL; " + bootstrap.Stage1()
	for _, tc := range []struct {
		name string
		argv []string
		want []string
	}{
		{"sudo", SudoArgv(Spec{Method: Sudo, User: "root"}), []string{"sudo", "-n", "-H", "-u", "root", "--", "/bin/sh", "-c", stage1}},
		{"sudo password", SudoArgv(Spec{Method: Sudo, User: "bob", Secret: "pw", PreserveEnv: true, Tool: "/x/sudo"}),
			[]string{"/x/sudo", "-k", "-A", "-H", "-u", "bob", "-E", "--", "/bin/sh", "-c", stage1}},
		{"sudo login", SudoArgv(Spec{Method: Sudo, User: "bob", Login: true}),
			[]string{"sudo", "-n", "-H", "-u", "bob", "-i", "--", "/bin/sh", "-c", "unset LC_ALL; " + bootstrap.Stage1Plain()}},
		{"su", SuArgv(Spec{Method: Su, User: "bob", PreserveEnv: true, Login: true}),
			[]string{"su", "-m", "-l", "-s", "/bin/sh", "-c", stage1, "bob"}},
		{"doas", SuArgv(Spec{Method: Doas, User: "bob"}), []string{"doas", "-n", "-u", "bob", "/bin/sh", "-c", stage1}},
		{"doas password", SuArgv(Spec{Method: Doas, User: "bob", Secret: "pw"}), []string{"doas", "-u", "bob", "/bin/sh", "-c", stage1}},
		{"openssh", OpenSSHArgv(Spec{Method: OpenSSH, SSH: transport.SSHSpec{Host: "web1", Port: 2222, User: "deploy",
			IdentityFiles: []string{"k"}, KnownHosts: "kh", HostKeyPolicy: transport.HostKeyAcceptNew, ConfigFile: "none"}, SSHArgs: []string{"-v"}}),
			[]string{"ssh", "-T", "-o", "NumberOfPasswordPrompts=1", "-p", "2222", "-l", "deploy", "-i", "k", "-o", "UserKnownHostsFile=kh",
				"-o", "StrictHostKeyChecking=accept-new", "-F", "/dev/null", "-o", "BatchMode=yes", "-v", "--", "web1", "sh -c " + shellQuote(bootstrap.Stage1())}},
		{"openssh password", OpenSSHArgv(Spec{Method: OpenSSH, Secret: "pw", SSH: transport.SSHSpec{Host: "h"}}),
			[]string{"ssh", "-T", "-o", "NumberOfPasswordPrompts=1", "-o", "StrictHostKeyChecking=yes", "--", "h", "sh -c " + shellQuote(bootstrap.Stage1())}},
	} {
		if !slices.Equal(tc.argv, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, tc.argv, tc.want)
		}
	}
}

// The caller's LC_ALL is put back for the child; the tool itself runs
// with LC_ALL=C.
func TestRestoreLocale(t *testing.T) {
	for v, want := range map[string]string{"": "unset LC_ALL; P", "de_DE.UTF-8": "LC_ALL=de_DE.UTF-8; export LC_ALL; P", "x'; rm -rf /": "unset LC_ALL; P",
		"C": "LC_ALL=C; export LC_ALL; P", "sr_RS.UTF-8@latin": "LC_ALL=sr_RS.UTF-8@latin; export LC_ALL; P",
		"a b": "unset LC_ALL; P", "$(id)": "unset LC_ALL; P", "fr_FR\n": "unset LC_ALL; P", "fr_FRé": "unset LC_ALL; P"} {
		t.Setenv("LC_ALL", v)
		if got := restoreLocale("P"); got != want {
			t.Errorf("LC_ALL=%q: %q, want %q", v, got, want)
		}
	}
}

func TestSplitTargetAndNames(t *testing.T) {
	for _, tc := range []struct {
		target, user, host string
		port               int
		name               string
	}{
		{"web1", "", "web1", 0, "ssh:web1"},
		{"root@127.0.0.1", "root", "127.0.0.1", 0, "ssh:root@127.0.0.1"},
		{"root@127.0.0.1:22", "root", "127.0.0.1", 22, "ssh:root@127.0.0.1"},
		{"root@127.0.0.1:2222", "root", "127.0.0.1", 2222, "ssh:root@127.0.0.1:2222"},
		{"[::1]:2222", "", "::1", 2222, "ssh:[::1]:2222"},
		{"[::1]", "", "::1", 0, "ssh:[::1]"},
		{"a@b@[fe80::1]:22", "a@b", "fe80::1", 22, "ssh:a@b@[fe80::1]"},
	} {
		user, host, port, err := SplitTarget(tc.target)
		if err != nil || user != tc.user || host != tc.host || port != tc.port {
			t.Errorf("SplitTarget(%q) = %q %q %d %v", tc.target, user, host, port, err)
		}
		s := Spec{SSH: transport.SSHSpec{User: user, Host: host, Port: port}}
		for _, m := range []string{SSH, OpenSSH} {
			if got := method(t, m).DefaultName(s, 7); got != tc.name {
				t.Errorf("%s name of %q = %q, want %q", m, tc.target, got, tc.name)
			}
		}
	}
	for _, bad := range []string{"", "user@", "h:0", "h:x", "h:70000"} {
		if _, _, _, err := SplitTarget(bad); err == nil {
			t.Errorf("SplitTarget(%q) accepted", bad)
		}
	}
	if got := method(t, Sudo).DefaultName(Spec{User: "root"}, 3); got != "sudo:root" {
		t.Errorf("sudo name %q", got)
	}
	if got := method(t, Local).DefaultName(Spec{}, 3); got != "local.3" {
		t.Errorf("local name %q", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		method string
		spec   Spec
		given  Option
		ok     bool
		says   string
	}{
		{SSH, Spec{}, OptTool, false, "Tool does not apply to the ssh method"},
		{SSH, Spec{}, OptSSHArgs, false, "SSHArgs"},
		{SSH, Spec{}, OptKeepalive | OptUser | OptPassword | OptIdentityFile, true, ""},
		{OpenSSH, Spec{}, OptKeepalive, false, "ServerAliveInterval"},
		{OpenSSH, Spec{}, OptSSHArgs | OptTool, true, ""},
		{Sudo, Spec{}, OptKeepalive, false, "Keepalive does not apply to the sudo method"},
		{Su, Spec{}, OptIdentityFile, false, "IdentityFile"},
		{Doas, Spec{}, OptPreserveEnv, false, "keepenv"},
		{Doas, Spec{}, OptLoginShell, false, "LoginShell"},
		{Local, Spec{}, OptPassword, false, "Password does not apply to the local method"},
		{Local, Spec{}, OptNoCache, false, "NoCache"},
		{Local, Spec{}, OptExecutable, true, ""},
		{Sudo, Spec{PreserveEnv: true, Login: true}, OptPreserveEnv | OptLoginShell, false, "-E"},
		{Su, Spec{PreserveEnv: true, Login: true}, OptPreserveEnv | OptLoginShell, true, ""},
		{Su, Spec{Secret: "a\nb"}, OptPassword, false, "newline"},
		{SSH, Spec{SSH: transport.SSHSpec{Password: "a\rb"}}, OptPassword, false, "newline"},
	} {
		err := method(t, tc.method).Validate(tc.spec, tc.given)
		if tc.ok != (err == nil) || (err != nil && (!errors.Is(err, ErrBadOption) || !strings.Contains(err.Error(), tc.says))) {
			t.Errorf("%s with %s: %v", tc.method, tc.given, err)
		}
	}
}

// Each refusal a tool prints (under LC_ALL=C) is read as its cause.
func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		method, secret, output string
		cause                  error
		says                   string
	}{
		{Sudo, "", "sudo: a password is required\n", ErrPasswordRequired, "sudo to bob: a password is required"},
		{Sudo, "", "sudo: unknown user bob\nsudo: error initializing audit plugin sudoers_audit\n", ErrUnknownUser, "user unknown"},
		{Sudo, "", "Sorry, user alice is not allowed to execute '/bin/sh -c ...' as bob on h.\n", ErrNotAllowed, "not allowed"},
		{Sudo, "", "alice is not in the sudoers file.\n", ErrNotAllowed, "sudoers"},
		{Su, "", "su: user bob does not exist or the user entry does not contain all the required fields\n", ErrUnknownUser, "su to bob: user unknown"},
		{Su, "pw", "su: Authentication failure\n", ErrPasswordIncorrect, "password incorrect"},
		{Su, "", "su: Authentication failure\n", ErrPasswordRequired, "a password is required"},
		{Su, "pw", "su: Permission denied\n", ErrNotAllowed, `not allowed: "su: Permission denied"`},
		{Doas, "pw", "doas: Authentication failed\n", ErrPasswordIncorrect, "password incorrect"},
		{Doas, "", "doas: Authorization required\n", ErrPasswordRequired, "a password is required"},
		{Doas, "", "doas: Operation not permitted\n", ErrNotAllowed, "doas.conf"},
		{Doas, "", "doas: unknown user\n", ErrUnknownUser, "user unknown"},
		{OpenSSH, "", "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\nHost key verification failed.\n", ErrUnknownHostKey, "not known"},
		{OpenSSH, "", "@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@\nHost key verification failed.\n", ErrChangedHostKey, "CHANGED"},
		{OpenSSH, "pw", "deploy@h: Permission denied (publickey,password).\n", ErrAuthFailed, `authentication failed: "deploy@h: Permission denied (publickey,password)."`},
		{OpenSSH, "", "ssh: connect to host h port 22: Connection refused\n", nil, "Connection refused"},
		{OpenSSH, "", "Warning: Identity file /tmp/nonexist_key not accessible: No such file or directory.\nLoad key \"/etc/hostname\": invalid format\ndeploy@h: Permission denied (publickey).\n",
			ErrAuthFailed, `identity files not used: "Warning: Identity file /tmp/nonexist_key not accessible: No such file or directory. Load key \"/etc/hostname\": invalid format"`},
		{Sudo, "", "something else\n", ErrHandshake, "EOF during bootstrap"},
	} {
		m := method(t, tc.method)
		s := Spec{Method: tc.method, User: "bob", Secret: tc.secret, SSH: transport.SSHSpec{Host: "h", User: "deploy"}}
		reason, cause := m.Explain(s, Attempt{Err: fmt.Errorf("reading: %w", errEOF), Output: tc.output})
		if cause != tc.cause || !strings.Contains(reason, tc.says) {
			t.Errorf("%s on %q: %v, %q; want %v and %q", tc.method, tc.output, cause, reason, tc.cause, tc.says)
		}
	}
}

// The strongest evidence wins: a refusal seen over what was printed, what
// was printed over a suspicion, a suspicion over what failed here.
func TestExplainOrder(t *testing.T) {
	m := method(t, Su)
	s := Spec{Method: Su, User: "bob", Secret: "pw"}
	base := Attempt{Err: errEOF, Status: "exit status 1"}
	if reason, cause := m.Explain(s, base); cause != ErrHandshake || !strings.Contains(reason, "exit status 1") {
		t.Errorf("nothing known: %v %q", cause, reason)
	}
	a := base
	a.Suspicion = ErrPasswordIncorrect
	if reason, cause := m.Explain(s, a); cause != ErrPasswordIncorrect || reason != "su to bob: password incorrect" {
		t.Errorf("suspicion: %v %q", cause, reason)
	}
	a.Output = "su: Permission denied\n"
	if _, cause := m.Explain(s, a); cause != ErrNotAllowed {
		t.Errorf("printed over suspicion: %v", cause)
	}
	a.Refusal = ErrPasswordIncorrect
	if _, cause := m.Explain(s, a); cause != ErrPasswordIncorrect {
		t.Errorf("refusal over printed: %v", cause)
	}
	if reason, _ := method(t, Local).Explain(Spec{}, base); !strings.Contains(reason, "actors.Main") {
		t.Errorf("local: %q", reason)
	}
}

func TestCodes(t *testing.T) {
	for _, c := range causes {
		if FromCode(Code(c.err)) != c.err {
			t.Errorf("%v does not survive its code %q", c.err, Code(c.err))
		}
		if !errors.Is(fmt.Errorf("x: %w", c.err), c.err) || Code(fmt.Errorf("x: %w", c.err)) != c.code {
			t.Errorf("%v wrapped loses its code", c.err)
		}
	}
	if Code(errors.New("other")) != "" || FromCode("from-a-newer-version") != nil || Code(nil) != "" {
		t.Error("unknown causes have codes")
	}
}

// Every method is registered once, with what it needs.
func TestRegistry(t *testing.T) {
	var names []string
	for _, m := range Methods() {
		names = append(names, m.Name)
		if m.start == nil || (m.Shell != (m.Name != Local)) {
			t.Errorf("method %s: incomplete", m.Name)
		}
	}
	slices.Sort(names)
	if want := []string{Chroot, Doas, Docker, Kubectl, Local, LXC, Nsenter, OpenSSH, Podman, SSH, Su, Sudo}; !slices.Equal(names, want) {
		t.Fatalf("methods %v, want %v", names, want)
	}
}

var errEOF = io.EOF

// The OpenSSH client's arguments that make the far side a terminal, in
// every spelling, and look-alikes that do not.
func TestRequestsTTY(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"-t"}, true},
		{[]string{"-tt"}, true},
		{[]string{"-vt"}, true},
		{[]string{"-o", "RequestTTY=yes"}, true},
		{[]string{"-oRequestTTY=force"}, true},
		{[]string{"-o", "requesttty Force"}, true},
		{[]string{"-o", "RequestTTY=no"}, false},
		{[]string{"-o", "RequestTTY=auto"}, false},
		{[]string{"-p", "22t"}, false},
		{[]string{"-p22t"}, false},
		{[]string{"-l", "t"}, false},
		{[]string{"-T", "-v", "-C"}, false},
		{[]string{"--", "-t"}, false},
		{[]string{"-o", "ServerAliveInterval=15", "-At"}, true},
	} {
		if got := requestsTTY(c.args); got != c.want {
			t.Errorf("requestsTTY(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}
