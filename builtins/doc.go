// Package builtins holds the functions every mitogo binary can run in any
// context of its tree: facts about the system, file access, and running
// commands, to completion (proc.exec) or streamed live (proc.run).
//
// Importing the package registers the functions with actors.Register under
// dotted names that read well on the command line (sys.facts, file.read,
// file.write, file.stat, proc.exec, proc.run). Every copy of a binary that
// imports the package knows them, so the master can call them in any child:
//
//	facts, err := builtins.Facts.Call(ctx, child, builtins.FactsRequest{})
//
// Argument and result types carry matching msgpack and json tags in
// snake_case, so a caller that only has JSON (the mitogo command's "call")
// can build the argument as a map: the far side decodes it into the struct.
//
// Errors from the operating system are returned as they are; the caller sees
// them as *actors.CallError carrying the remote error's type and message.
//
// Run is the caller's side of proc.run: it starts a command in a context,
// copies its output to local writers as it arrives, forwards stdin and
// returns the command's exit status.
//
// Catalog lists the functions with a one-line summary and an example of
// their JSON arguments.
package builtins
