package builtins_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/mitogo/mitogo/actors"
	"github.com/mitogo/mitogo/builtins"
)

// Run a command to completion in a child context and look at its output.
// (The program's main must call actors.Main first: the child is a copy of it.)
func Example() {
	ctx := context.Background()
	r, err := actors.NewRouter()
	if err != nil {
		log.Fatal(err)
	}
	defer r.Shutdown(ctx)
	child, err := r.Local(ctx)
	if err != nil {
		log.Fatal(err)
	}
	res, err := builtins.ProcExec.Call(ctx, child, builtins.ExecRequest{Argv: []string{"sh", "-c", "echo hello; exit 4"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("exit %d, stdout %q\n", res.ExitCode, res.Stdout)
	// Output: exit 4, stdout "hello\n"
}

// Stream a command's output as it comes, feeding it nothing on stdin.
func ExampleRun() {
	ctx := context.Background()
	r, err := actors.NewRouter()
	if err != nil {
		log.Fatal(err)
	}
	defer r.Shutdown(ctx)
	child, err := r.Local(ctx)
	if err != nil {
		log.Fatal(err)
	}
	exit, err := builtins.Run(ctx, r, child, builtins.RunRequest{Argv: []string{"sh", "-c", "echo one; echo two; exit 2"}}, nil, os.Stdout, os.Stderr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("exit", exit)
	// Output:
	// one
	// two
	// exit 2
}

// Write a file in a child context, read it back, and stat it.
func Example_files() {
	ctx := context.Background()
	r, err := actors.NewRouter()
	if err != nil {
		log.Fatal(err)
	}
	defer r.Shutdown(ctx)
	child, err := r.Local(ctx)
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "mitogo-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "greeting")

	if _, err := builtins.FileWrite.Call(ctx, child, builtins.WriteRequest{Path: path, Data: []byte("hi\n"), Mode: 0o600, Atomic: true}); err != nil {
		log.Fatal(err)
	}
	rd, err := builtins.FileRead.Call(ctx, child, builtins.ReadRequest{Path: path})
	if err != nil {
		log.Fatal(err)
	}
	st, err := builtins.FileStat.Call(ctx, child, builtins.StatRequest{Path: path})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q %s %d bytes\n", rd.Data, st.Mode, st.Size)
	_, err = builtins.FileStat.Call(ctx, child, builtins.StatRequest{Path: filepath.Join(dir, "missing")})
	fmt.Println(err != nil)
	// Output:
	// "hi\n" -rw------- 3 bytes
	// true
}

// The catalog lists the built-in functions.
func ExampleCatalog() {
	for _, e := range builtins.Catalog() {
		fmt.Println(e.Name)
	}
	// Output:
	// file.read
	// file.stat
	// file.write
	// proc.exec
	// proc.run
	// sys.facts
}
