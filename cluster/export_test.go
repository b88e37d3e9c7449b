package cluster

// The host side of fencing, for tests.
type FenceArgs = fenceArgs
type RunArgs = runArgs

var (
	TakeFence = takeFence
	HoldFence = holdFence
	RunFenced = runFenced
)

const CodeFenced = codeFenced

func NewRunArgs(fa fenceArgs, fn string, args []byte) runArgs {
	return runArgs{fenceArgs: fa, Fn: fn, Args: args}
}

var Preferred = preferred
