package transport

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/crypto/ssh"
)

// Why an identity file was not used, matched with errors.Is on its
// *IdentityError and on the *AuthError that lists it.
var (
	// ErrIdentityUnusable: an identity file could not be used (every
	// *IdentityError matches it; the cause it wraps says why: a file that
	// is not there matches fs.ErrNotExist).
	ErrIdentityUnusable = errors.New("identity file not usable")
	// ErrNotPrivateKey: the file holds no private key this client reads.
	ErrNotPrivateKey = errors.New("not a private key")
	// ErrKeyEncrypted: the key is encrypted with a passphrase, and there is
	// no way to ask for it (mitogo takes passphrases from ssh-agent only).
	ErrKeyEncrypted = errors.New("the key is encrypted with a passphrase")
)

// IdentityError reports an identity file that was not used, and why. Like
// OpenSSH, the connection goes on with the other credentials; when none is
// accepted, the *AuthError lists it.
type IdentityError struct {
	Path string // as given or found in ~/.ssh/config
	Err  error  // fs.ErrNotExist, fs.ErrPermission..., or ErrNotPrivateKey, ErrKeyEncrypted
}

// Error names the file and the cause.
func (e *IdentityError) Error() string { return "identity file " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *IdentityError) Unwrap() error { return e.Err }

// Is matches ErrIdentityUnusable.
func (e *IdentityError) Is(target error) bool { return target == ErrIdentityUnusable }

// loadIdentity reads the private key at path. Its error is an
// *IdentityError.
func loadIdentity(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the IdentityError
		}
		return nil, &IdentityError{Path: path, Err: err}
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err == nil {
		return signer, nil
	}
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return nil, &IdentityError{Path: path, Err: fmt.Errorf("%w, and mitogo does not ask for passphrases: add it to ssh-agent (ssh-add %s)", ErrKeyEncrypted, path)}
	}
	if _, _, _, _, perr := ssh.ParseAuthorizedKey(data); perr == nil {
		return nil, &IdentityError{Path: path, Err: fmt.Errorf("%w: it holds a public key (name the private key file, not the .pub)", ErrNotPrivateKey)}
	}
	return nil, &IdentityError{Path: path, Err: fmt.Errorf("%w: %v", ErrNotPrivateKey, err)}
}
