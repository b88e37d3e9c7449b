package fakessh

import "testing"

// The command lines rsync, scp (both modes) and git give ssh.
func TestParseArgs(t *testing.T) {
	cases := []struct {
		args []string
		want invocation
	}{
		{[]string{"target", "rsync", "--server", "-logDtpre.iLsfxCIvu", ".", "dst/"},
			invocation{Host: "target", Command: "rsync --server -logDtpre.iLsfxCIvu . dst/"}},
		{[]string{"-l", "deploy", "-p", "2222", "web1", "rsync", "--server", "."},
			invocation{Host: "web1", Command: "rsync --server ."}},
		{[]string{"-x", "-oPermitLocalCommand=no", "-oClearAllForwardings=yes", "-oRemoteCommand=none", "-oRequestTTY=no", "-oForwardAgent=no", "-s", "--", "target", "sftp"},
			invocation{Host: "target", Command: "sftp", Subsystem: true}},
		{[]string{"-x", "-oForwardAgent=no", "-oPermitLocalCommand=no", "-oClearAllForwardings=yes", "-oRemoteCommand=none", "-oRequestTTY=no", "--", "deploy@target", "scp -t file"},
			invocation{Host: "target", Command: "scp -t file"}},
		{[]string{"-o", "SendEnv=GIT_PROTOCOL", "ssh://git@repo:2222", "git-upload-pack '/srv/x.git'"},
			invocation{Host: "repo", Command: "git-upload-pack '/srv/x.git'"}},
		{[]string{"-vvv", "-4", "[::1]:22", "true"}, invocation{Host: "::1", Command: "true"}},
	}
	for _, tc := range cases {
		got, err := parseArgs(tc.args)
		if err != nil || got != tc.want {
			t.Errorf("parseArgs(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	for _, bad := range [][]string{{}, {"-p"}, {"host"}, {"-Z", "host", "true"}} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("parseArgs(%q): no error", bad)
		}
	}
}
