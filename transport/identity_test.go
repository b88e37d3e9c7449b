package transport

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mitogo/mitogo/test/sshtest"
)

// writeKeys writes, in dir, an ed25519 key in the forms a user may name by
// mistake: its public half, and the private key encrypted with a
// passphrase.
func writeKeys(t *testing.T, dir string) (pub, encrypted string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(sk, "test", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	pub, encrypted = filepath.Join(dir, "id.pub"), filepath.Join(dir, "id_encrypted")
	if err := os.WriteFile(pub, ssh.MarshalAuthorizedKey(sshPub), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(encrypted, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, encrypted
}

// Each identity file that cannot be used says which file and why.
func TestIdentityFileErrors(t *testing.T) {
	dir := t.TempDir()
	pub, encrypted := writeKeys(t, dir)
	notKey := filepath.Join(dir, "hostname")
	os.WriteFile(notKey, []byte("web1\n"), 0o644)
	missing := filepath.Join(dir, "nonexist_key")
	for _, tc := range []struct {
		path  string
		cause error
		says  string
	}{
		{missing, fs.ErrNotExist, "identity file " + missing + ": no such file or directory"},
		{notKey, ErrNotPrivateKey, "identity file " + notKey + ": not a private key: "},
		{pub, ErrNotPrivateKey, "identity file " + pub + ": not a private key: it holds a public key"},
		{encrypted, ErrKeyEncrypted, "identity file " + encrypted + ": the key is encrypted with a passphrase, and mitogo does not ask for passphrases: add it to ssh-agent"},
		{dir, ErrIdentityUnusable, "identity file " + dir + ": is a directory"},
	} {
		_, err := loadIdentity(tc.path)
		if !errors.Is(err, ErrIdentityUnusable) || !errors.Is(err, tc.cause) || !strings.HasPrefix(err.Error(), tc.says) {
			t.Errorf("%s: %v; want %v and %q", tc.path, err, tc.cause, tc.says)
		}
	}
}

// An identity file named explicitly that cannot be used is not silently
// dropped: when the server accepts nothing else, the authentication error
// names it and says why, and matches its cause.
func TestSSHUnusableIdentityNamedInAuthError(t *testing.T) {
	s := sshtest.Start(t)
	pub, encrypted := writeKeys(t, t.TempDir())
	missing := filepath.Join(t.TempDir(), "nonexist_key")
	for _, tc := range []struct {
		path  string
		cause error
		says  string
	}{
		{missing, fs.ErrNotExist, "identity file " + missing + ": no such file or directory"},
		{"/etc/hostname", ErrNotPrivateKey, "identity file /etc/hostname: not a private key"},
		{pub, ErrNotPrivateKey, "identity file " + pub + ": not a private key"},
		{encrypted, ErrKeyEncrypted, "identity file " + encrypted + ": the key is encrypted"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		spec := SSHSpec{Host: s.Host, Port: s.Port, User: s.User, IdentityFiles: []string{tc.path}, KnownHosts: s.KnownHosts,
			NoAgent: true, ConfigFile: "none"}
		child, err := StartSSH(ctx, spec, "true", nil, nil)
		cancel()
		if err == nil {
			child.Conn.Close()
			<-child.Proc.Done()
			t.Fatalf("%s: connected", tc.path)
		}
		var ae *AuthError
		if !errors.As(err, &ae) || !errors.Is(err, ErrAuthFailed) || !errors.Is(err, ErrIdentityUnusable) || !errors.Is(err, tc.cause) ||
			!strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %T %v; want an *AuthError matching %v that says %q", tc.path, err, err, tc.cause, tc.says)
		}
	}
}
