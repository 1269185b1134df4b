package gen

import (
	// Load reads the raft package from the module it runs in: this import
	// makes the generator's module require the core.
	_ "github.com/raftkit/raftkit/raft"

	"bytes"
	"errors"
	"flag"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/tools/imports"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var (
	loadOnce sync.Once
	loaded   *Interfaces
	loadErr  error
)

// interfaces loads this checkout's raft package once.
func interfaces(t *testing.T) *Interfaces {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = Load("") })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

// specs is every kind and shape.
func specs() []Spec {
	var out []Spec
	for _, k := range []Kind{Storage, Network} {
		for _, sh := range append([]string{""}, Shapes[k]...) {
			name := "DocStore"
			if k == Network {
				name = "QueueNet"
			}
			out = append(out, Spec{Kind: k, Name: name, Shape: sh})
		}
	}
	return out
}

func goldenDir(s Spec) string {
	sh := s.Shape
	if sh == "" {
		sh = "plain"
	}
	return filepath.Join("testdata", "golden", string(s.Kind)+"-"+sh)
}

// TestGenerateEveryShape checks what every scaffold must be: parseable,
// gofmt- and goimports-clean, headed as generated where it is, with every
// method of the interfaces and its contract.
func TestGenerateEveryShape(t *testing.T) {
	is := interfaces(t)
	for _, s := range specs() {
		files, err := Generate(is, s)
		if err != nil {
			t.Fatalf("%s %s: %v", s.Kind, s.Shape, err)
		}
		for _, f := range files {
			if _, err := parser.ParseFile(token.NewFileSet(), f.Name, f.Data, parser.ParseComments); err != nil {
				t.Errorf("%s %s %s does not parse: %v", s.Kind, s.Shape, f.Name, err)
			}
			clean, err := imports.Process(f.Name, f.Data, nil)
			if err != nil || !bytes.Equal(clean, f.Data) {
				t.Errorf("%s %s %s is not goimports-clean (%v)", s.Kind, s.Shape, f.Name, err)
			}
			if gen := strings.HasSuffix(f.Name, "_gen.go"); gen == f.Owned || gen != bytes.HasPrefix(f.Data, []byte("// "+GeneratedHeader)) {
				t.Errorf("%s: owned %v, header %q", f.Name, f.Owned, bytes.SplitN(f.Data, []byte("\n"), 2)[0])
			}
		}
		impl := string(files[0].Data)
		for _, t0 := range s.withDefaultsMust().types() {
			it, _ := is.Lookup(t0.iface)
			for _, m := range it.Methods {
				if !strings.Contains(impl, ") "+m.Name+"(") {
					t.Errorf("%s %s: no method %s.%s", s.Kind, s.Shape, t0.typ, m.Name)
				}
				if first := strings.SplitN(m.Doc, "\n", 2)[0]; !strings.Contains(impl, "// "+first) {
					t.Errorf("%s %s: the contract of %s is not copied (%q)", s.Kind, s.Shape, m.Name, first)
				}
			}
		}
		if !strings.Contains(impl, "//go:generate "+s.withDefaultsMust().Command()) {
			t.Errorf("%s %s: no //go:generate directive", s.Kind, s.Shape)
		}
	}
}

func (s Spec) withDefaultsMust() Spec {
	s, err := s.withDefaults()
	if err != nil {
		panic(err)
	}
	return s
}

// TestGolden compares every scaffold with the committed one: a change to
// the generator or to the raft interfaces shows here (rerun with -update
// and review the difference).
func TestGolden(t *testing.T) {
	is := interfaces(t)
	for _, s := range specs() {
		files, err := Generate(is, s)
		if err != nil {
			t.Fatal(err)
		}
		dir := goldenDir(s)
		for _, f := range files {
			path := filepath.Join(dir, f.Name+".golden")
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./gen -run TestGolden -update)", err)
			}
			if !bytes.Equal(want, f.Data) {
				t.Errorf("%s differs from the committed golden file: rerun with -update and review the change", path)
			}
		}
	}
}

func TestSpecErrors(t *testing.T) {
	is := interfaces(t)
	for _, c := range []struct {
		spec Spec
		want error
	}{
		{Spec{Kind: Storage, Name: "docStore"}, ErrName},
		{Spec{Kind: Storage, Name: "1Store"}, ErrName},
		{Spec{Kind: Storage, Name: "Doc-Store"}, ErrName},
		{Spec{Kind: Storage, Name: "Doc", Package: "main"}, ErrName},
		{Spec{Kind: Storage, Name: "Doc", Package: "my-pkg"}, ErrName},
		{Spec{Kind: Storage, Name: "Doc", Receiver: "1r"}, ErrName},
		{Spec{Kind: Storage, Name: "Doc", Shape: "pubsub"}, ErrShape},
		{Spec{Kind: Network, Name: "Net", Shape: "sql"}, ErrShape},
	} {
		if _, err := Generate(is, c.spec); !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.spec, err, c.want)
		}
	}
	if _, err := Generate(is, Spec{Kind: "cache", Name: "C"}); err == nil {
		t.Error("unknown kind accepted")
	}
}

// TestWriteOwnership: user files are written once, the generated file
// every time; -force overwrites; -add-missing restores deleted methods;
// Diff sees a stale generated file.
func TestWriteOwnership(t *testing.T) {
	is := interfaces(t)
	dir := t.TempDir()
	s := Spec{Kind: Storage, Name: "DocStore"}
	files, err := Generate(is, s)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := Write(dir, s, files, WriteOptions{}); err != nil || len(res.Written) != 3 {
		t.Fatalf("first write: %+v, %v", res, err)
	}
	impl := filepath.Join(dir, "doc_store.go")
	mine := []byte("package docstore\n\n// mine\n")
	if err := os.WriteFile(impl, mine, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "doc_store_gen.go"), []byte("package docstore\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Diff(dir, files); !errors.Is(err, ErrStale) {
		t.Fatalf("diff of an edited generated file: %v, want ErrStale", err)
	}
	res, err := Write(dir, s, files, WriteOptions{})
	if err != nil || len(res.Kept) != 2 || len(res.Written) != 1 {
		t.Fatalf("second write: %+v, %v", res, err)
	}
	if got, _ := os.ReadFile(impl); !bytes.Equal(got, mine) {
		t.Fatal("a user file was overwritten without -force")
	}
	if err := Diff(dir, files); err != nil {
		t.Fatalf("diff after regenerating: %v", err)
	}
	// -add-missing restores every method the file lacks.
	if res, err := Write(dir, s, files, WriteOptions{AddMissing: true}); err != nil || len(res.Extended) != 1 {
		t.Fatalf("add missing: %+v, %v", res, err)
	}
	got, _ := os.ReadFile(impl)
	for _, m := range []string{"Save", "InitialState", "Commit", "Write"} {
		if !bytes.Contains(got, []byte(") "+m+"(")) {
			t.Errorf("-add-missing did not add %s", m)
		}
	}
	if res, err := Write(dir, s, files, WriteOptions{AddMissing: true}); err != nil || len(res.Extended) != 0 {
		t.Fatalf("add missing twice: %+v, %v", res, err)
	}
	if _, err := Write(dir, s, files, WriteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(impl); !bytes.Equal(got, files[0].Data) {
		t.Fatal("-force did not overwrite")
	}
}

func TestWriteRefusesUnusableDirectories(t *testing.T) {
	is := interfaces(t)
	s := Spec{Kind: Network, Name: "QueueNet"}
	files, err := Generate(is, s)
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "x.go"), []byte("package other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(other, s, files, WriteOptions{}); !errors.Is(err, ErrDir) || !strings.Contains(err.Error(), "package other") {
		t.Errorf("directory of another package: %v, want ErrDir naming it", err)
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(filepath.Join(file, "sub"), s, files, WriteOptions{}); !errors.Is(err, ErrDir) {
		t.Errorf("directory under a file: %v, want ErrDir", err)
	}
}

func TestFileBase(t *testing.T) {
	for in, want := range map[string]string{"DocStore": "doc_store", "S3Log": "s3_log", "HTTPNet": "httpnet", "X": "x"} {
		if got := FileBase(in); got != want {
			t.Errorf("FileBase(%q) = %q, want %q", in, got, want)
		}
	}
}
