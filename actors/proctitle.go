package actors

import "github.com/mitogo/mitogo/bootstrap"

// setProcessTitle names this child in ps: "mitogo: NAME", the context's
// name, instead of the path it was started by (for a child started over
// stage 1, a cache file named by a hash). It is cosmetic: where the title
// cannot be set the child serves as well.
func setProcessTitle(name string) {
	_ = bootstrap.SetProcessTitle("mitogo", "mitogo: "+name)
}
