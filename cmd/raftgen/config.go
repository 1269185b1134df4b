package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/raftkit/raftkit/gen"
)

// configFile is raftgen.yaml: the scaffolds "raftgen generate" writes and
// "raftgen diff" checks, so that one command (or a //go:generate line)
// regenerates them all.
type configFile struct {
	Scaffolds []scaffoldEntry `yaml:"scaffolds"`
}

type scaffoldEntry struct {
	Kind     string `yaml:"kind"`               // storage or network
	Name     string `yaml:"name"`               // the exported type
	Dir      string `yaml:"dir"`                // relative to raftgen.yaml
	Package  string `yaml:"package,omitempty"`  // default: name in lower case
	Receiver string `yaml:"receiver,omitempty"` // default: name's first letter
	Shape    string `yaml:"shape,omitempty"`    // see raftgen storage -h
}

const configHeader = `# raftgen.yaml: the scaffolds "raftgen generate" writes and "raftgen diff"
# checks (exit status 1 when a generated file is out of date). Paths are
# relative to this file. A //go:generate line can run it:
#
#   //go:generate go tool raftgen generate
#
# (after go get -tool github.com/raftkit/raftkit/cmd/raftgen).
#
# kind: storage or network; shape (optional): storage sql, kv or file;
# network reqrep or pubsub.
`

func readConfig(path string) (*configFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s (create one with raftgen init): %w", path, err)
	}
	var c configFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Scaffolds) == 0 {
		return nil, fmt.Errorf("%s lists no scaffolds", path)
	}
	for i, s := range c.Scaffolds {
		if s.Kind != string(gen.Storage) && s.Kind != string(gen.Network) {
			return nil, fmt.Errorf("%s: scaffold %d: kind %q, want storage or network", path, i+1, s.Kind)
		}
		if s.Dir == "" {
			return nil, fmt.Errorf("%s: scaffold %d (%s): dir is required", path, i+1, s.Name)
		}
	}
	return &c, nil
}

// cmdInit writes a raftgen.yaml describing one scaffold.
func cmdInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("raftgen init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "raftgen.yaml", "the file to write")
	kind := fs.String("kind", "storage", "storage or network")
	name := fs.String("name", "", "the exported type (default: MyStore or MyNetwork)")
	dir := fs.String("o", "", "the scaffold's directory, relative to the file (default: the name in lower case)")
	shape := fs.String("shape", "", "backend shape (see raftgen storage -h and raftgen network -h)")
	force := fs.Bool("force", false, "overwrite an existing file")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: raftgen init [flags]\n\nWrites raftgen.yaml, which raftgen generate and raftgen diff read. Edit it to add scaffolds.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *name == "" {
		*name = map[string]string{"storage": "MyStore", "network": "MyNetwork"}[*kind]
	}
	spec := gen.Spec{Kind: gen.Kind(*kind), Name: *name, Shape: *shape}
	if err := spec.Validate(); err != nil {
		fmt.Fprintln(stderr, "raftgen init:", err)
		return 2
	}
	if *dir == "" {
		*dir = "./" + spec.PackageName()
	}
	if _, err := os.Stat(*file); err == nil && !*force {
		fmt.Fprintf(stderr, "raftgen init: %s exists (-force overwrites it)\n", *file)
		return 1
	}
	c := configFile{Scaffolds: []scaffoldEntry{{Kind: *kind, Name: *name, Dir: *dir, Shape: *shape}}}
	b, err := yaml.Marshal(c)
	if err != nil {
		fmt.Fprintln(stderr, "raftgen init:", err)
		return 1
	}
	if err := os.WriteFile(*file, append([]byte(configHeader), b...), 0o644); err != nil {
		fmt.Fprintln(stderr, "raftgen init:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s; run raftgen generate\n", *file)
	return 0
}

// cmdGenerate writes (or, with check, diffs) every scaffold of the file.
func cmdGenerate(name string, args []string, check bool, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "raftgen.yaml", "the file listing the scaffolds")
	force := fs.Bool("force", false, "overwrite your files too")
	addMissing := fs.Bool("add-missing", false, "add stubs for methods missing from your files")
	fs.Usage = func() {
		what := "Writes every scaffold raftgen.yaml lists: generated files always, yours only when missing."
		if check {
			what = "Exits with status 1 when a generated file of a scaffold raftgen.yaml lists is out of date."
		}
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\n%s\n\nFlags:\n", name, what)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	c, err := readConfig(*file)
	if err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	base := filepath.Dir(*file)
	is, err := gen.Load(base)
	if err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	status := 0
	for _, e := range c.Scaffolds {
		spec := gen.Spec{Kind: gen.Kind(e.Kind), Name: e.Name, Package: e.Package, Receiver: e.Receiver, Shape: e.Shape}
		files, err := gen.Generate(is, spec)
		if err != nil {
			fmt.Fprintln(stderr, name+":", err)
			return 2
		}
		dir := filepath.Join(base, e.Dir)
		if check {
			if err := gen.Diff(dir, files); err != nil {
				fmt.Fprintf(stderr, "%s: %s: %v\n", name, e.Dir, err)
				status = 1
			}
			continue
		}
		res, err := gen.Write(dir, spec, files, gen.WriteOptions{Force: *force, AddMissing: *addMissing})
		if err != nil {
			fmt.Fprintln(stderr, name+":", err)
			return 1
		}
		report(stdout, e.Dir, res)
	}
	return status
}

func report(w io.Writer, dir string, res gen.Result) {
	for _, f := range res.Written {
		fmt.Fprintln(w, "wrote", filepath.Join(dir, f))
	}
	for _, f := range res.Extended {
		fmt.Fprintln(w, "added missing methods to", filepath.Join(dir, f))
	}
	for _, f := range res.Kept {
		fmt.Fprintln(w, "kept", filepath.Join(dir, f), "(yours; -force overwrites it)")
	}
}
