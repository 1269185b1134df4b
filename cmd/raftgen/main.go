// Command raftgen scaffolds custom implementations of raft.Storage and
// raft.Network: a package that compiles, explains every contract in place,
// and is wired to the conformance suite that says when it is done.
//
//	raftgen storage DocStore -o ./docstore -shape kv
//	raftgen network QueueNet -o ./queuenet -shape pubsub
//	raftgen diff storage DocStore -o ./docstore   # exit 1 when generated files are stale
//	raftgen version
//
// Run it inside the module that will hold the scaffold: it reads the raft
// interfaces of the raftkit version that module requires.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/raftkit/raftkit/gen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `raftgen scaffolds custom raftkit adapters.

Usage:
  raftgen storage <Name> [flags]   a raft.Storage (and its SnapshotWriter)
  raftgen network <Name> [flags]   a raft.Network (and MeasuredNetwork)
  raftgen init [flags]             write raftgen.yaml, listing scaffolds to generate
  raftgen generate [flags]         write every scaffold raftgen.yaml lists (for //go:generate)
  raftgen diff [flags]             exit status 1 when a generated file raftgen.yaml
                                   lists is out of date (for CI)
  raftgen diff storage|network <Name> [flags]
                                   the same for one scaffold given on the command line
  raftgen version                  print raftgen's version

Run "raftgen <command> -h" for a command's flags. What a scaffold holds:
  <name>.go       yours: the type, its constructor and every method, each with
                  its contract and a body returning a "not implemented" error;
                  written once (-force overwrites, -add-missing adds stubs for
                  methods the interfaces gained)
  <name>_gen.go   raftgen's: compile-time interface checks, rewritten each run
  <name>_test.go  yours: the conformance suite and a benchmark, failing with
                  the names of the contracts not yet met
`

// run is main without the exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch cmd := args[0]; cmd {
	case "version":
		fmt.Fprintln(stdout, "raftgen", version())
		return 0
	case "storage", "network":
		return scaffold(gen.Kind(cmd), args[1:], false, stdout, stderr)
	case "init":
		return cmdInit(args[1:], stdout, stderr)
	case "generate":
		return cmdGenerate("raftgen generate", args[1:], false, stdout, stderr)
	case "diff":
		if len(args) >= 2 && (args[1] == "storage" || args[1] == "network") {
			return scaffold(gen.Kind(args[1]), args[2:], true, stdout, stderr)
		}
		if len(args) >= 2 && !strings.HasPrefix(args[1], "-") {
			fmt.Fprintln(stderr, "raftgen diff: want storage or network and a name, or flags for raftgen.yaml: raftgen diff storage DocStore -o ./docstore")
			return 2
		}
		return cmdGenerate("raftgen diff", args[1:], true, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "raftgen: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

func scaffold(kind gen.Kind, args []string, diff bool, stdout, stderr io.Writer) int {
	name := "raftgen " + string(kind)
	if diff {
		name = "raftgen diff " + string(kind)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", ".", "output directory (created if missing)")
	pkg := fs.String("pkg", "", "package name (default: the type name in lower case)")
	recv := fs.String("receiver", "", "receiver name of the methods (default: the type name's first letter)")
	shape := fs.String("shape", "", "backend shape: "+shapesOf(kind))
	force := fs.Bool("force", false, "overwrite your files (<name>.go, <name>_test.go) if they exist")
	addMissing := fs.Bool("add-missing", false, "add stubs for methods missing from your existing <name>.go")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s <Name> [flags]\n\n<Name> is the exported type to create, such as DocStore.\n\nFlags:\n", name)
		fs.PrintDefaults()
	}
	// Accept the name before or after the flags.
	var typeName string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		typeName, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if typeName == "" && fs.NArg() > 0 {
		typeName = fs.Arg(0)
	}
	if typeName == "" {
		fs.Usage()
		return 2
	}
	spec := gen.Spec{Kind: kind, Name: typeName, Package: *pkg, Receiver: *recv, Shape: *shape}
	is, err := gen.Load(*out)
	if err != nil {
		// The output directory may not exist yet: load from the current one.
		if _, statErr := os.Stat(*out); statErr != nil {
			is, err = gen.Load("")
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "raftgen:", err)
		return 1
	}
	files, err := gen.Generate(is, spec)
	if err != nil {
		fmt.Fprintln(stderr, "raftgen:", err)
		return 2
	}
	if diff {
		if err := gen.Diff(*out, files); err != nil {
			fmt.Fprintln(stderr, "raftgen:", err)
			return 1
		}
		return 0
	}
	res, err := gen.Write(*out, spec, files, gen.WriteOptions{Force: *force, AddMissing: *addMissing})
	if err != nil {
		fmt.Fprintln(stderr, "raftgen:", err)
		return 1
	}
	report(stdout, *out, res)
	return 0
}

func shapesOf(k gen.Kind) string {
	return strings.Join(gen.Shapes[k], ", ") + " (default: none)"
}

// version is the module version raftgen was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "devel " + s.Value
			}
		}
	}
	return "devel"
}
