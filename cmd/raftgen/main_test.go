package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// repoRoot is this checkout, which the test modules replace raftkit with.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// tempModule makes a module that requires raftkit's core, generator and
// raftgen modules, replaced by this checkout's directories, with every dependency already in the module cache.
func tempModule(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	dir := t.TempDir()
	// raftgen runs in this process and loads packages with the go command:
	// offline, and free to complete go.mod as "go get" would have.
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOPROXY", "off")
	// Offline: modules come from the local cache, verified when they were
	// downloaded; the checksum database may be unreachable.
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOWORK", "off")
	// raftgen runs in this process: anything it does in its working
	// directory happens in the test module, never in this one (with
	// -mod=mod, loading packages here would rewrite this go.mod).
	t.Chdir(dir)
	goVersion := "1.26.0"
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "go "); ok {
				goVersion = strings.TrimSpace(v)
			}
		}
	}
	// The core, the generator and this command are modules of their own
	// in the checkout.
	mod := fmt.Sprintf("module example.com/app\n\ngo %s\n\n", goVersion)
	var sums []byte
	for _, m := range []string{"", "gen", "cmd/raftgen"} {
		path := strings.TrimSuffix("github.com/raftkit/raftkit/"+m, "/")
		mod += fmt.Sprintf("require %s v0.0.0\nreplace %s => %s\n", path, path, filepath.Join(root, m))
		sum, err := os.ReadFile(filepath.Join(root, m, "go.sum"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		sums = append(sums, sum...)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// goCmdOut runs the go command offline in dir and returns its output; it
// fails the test on error unless allowFail. The tests run "go mod tidy -e":
// tidy also wants the modules that only the tests of dependencies import
// (testify, for OpenTelemetry's), which an offline module cache may lack
// and which building and testing the generated code never needs.
func goCmdOut(t *testing.T, dir string, allowFail bool, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil && !allowFail {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), err
}

func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, _ := goCmdOut(t, dir, false, args...)
	return out
}

func raftgen(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String() + errOut.String()
}

// TestScaffoldsBuildVetAndNameTheirContracts generates a storage and a
// network scaffold into a fresh module: they build, pass go vet, and their
// tests fail naming the contracts not yet met.
func TestScaffoldsBuildVetAndNameTheirContracts(t *testing.T) {
	mod := tempModule(t)
	for _, c := range []struct{ kind, name, pkg, contract string }{
		{"storage", "DocStore", "docstore", "InitialState: must succeed"},
		{"network", "QueueNet", "queuenet", "QueueNet.Start: queuenet: not implemented"},
	} {
		out := filepath.Join(mod, c.pkg)
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		if code, msg := raftgen(t, c.kind, c.name, "-o", out); code != 0 {
			t.Fatalf("raftgen %s: exit %d: %s", c.kind, code, msg)
		}
		goCmd(t, mod, "mod", "tidy", "-e")
		goCmd(t, mod, "build", "./"+c.pkg)
		goCmd(t, mod, "vet", "./"+c.pkg)
		text, err := goCmdOut(t, mod, true, "test", "./"+c.pkg)
		if err == nil {
			t.Fatalf("the %s scaffold's tests pass before anything is implemented", c.kind)
		}
		if !strings.Contains(text, c.contract) || !strings.Contains(text, "not implemented") {
			t.Fatalf("the %s scaffold's tests do not name the contracts:\n%s", c.kind, text[:min(len(text), 2000)])
		}
		if code, msg := raftgen(t, "diff", c.kind, c.name, "-o", out); code != 0 {
			t.Fatalf("diff right after generating: exit %d: %s", code, msg)
		}
	}
	// The //go:generate directive regenerates with raftgen as a tool of
	// the module.
	gen := filepath.Join(mod, "docstore", "doc_store_gen.go")
	goCmd(t, mod, "get", "-tool", "github.com/raftkit/raftkit/cmd/raftgen")
	if err := os.Remove(gen); err != nil {
		t.Fatal(err)
	}
	goCmd(t, mod, "generate", "./docstore")
	if code, msg := raftgen(t, "diff", "storage", "DocStore", "-o", filepath.Join(mod, "docstore")); code != 0 {
		t.Fatalf("diff after go generate: exit %d: %s", code, msg)
	}
	// A stale generated file makes diff exit 1.
	if err := os.WriteFile(gen, []byte("package docstore\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, msg := raftgen(t, "diff", "storage", "DocStore", "-o", filepath.Join(mod, "docstore")); code != 1 || !strings.Contains(msg, "out of date") {
		t.Fatalf("diff of a stale file: exit %d: %s", code, msg)
	}
}

// TestFilledStorageScaffoldPassesConformance fills a storage scaffold with
// a working implementation (each method delegating to the memory store)
// and runs its generated test: the whole conformance suite passes, so the
// scaffold has the right shape.
func TestFilledStorageScaffoldPassesConformance(t *testing.T) {
	mod := tempModule(t)
	out := filepath.Join(mod, "docstore")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, msg := raftgen(t, "storage", "DocStore", "-o", out); code != 0 {
		t.Fatalf("raftgen: exit %d: %s", code, msg)
	}
	impl := filepath.Join(out, "doc_store.go")
	fill(t, impl)
	test := filepath.Join(out, "doc_store_test.go")
	src, _ := os.ReadFile(test)
	src = bytes.Replace(src, []byte("// TODO: open the data old held."),
		[]byte("return &DocStore{mem: old.(*DocStore).mem.Reopen()}"), 1)
	if err := os.WriteFile(test, src, 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd(t, mod, "mod", "tidy", "-e")
	text, err := goCmdOut(t, mod, true, "test", "./docstore")
	if err != nil {
		t.Fatalf("the filled scaffold fails its conformance test:\n%s", text[:min(len(text), 3000)])
	}
}

// fill rewrites the scaffold at path so that DocStore keeps a memory store
// and every one of its methods delegates to it.
func fill(t *testing.T, path string) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.Name == "DocStore" {
					st := ts.Type.(*ast.StructType)
					typ, _ := parser.ParseExpr("*memory.Storage")
					st.Fields.List = append(st.Fields.List, &ast.Field{Names: []*ast.Ident{ast.NewIdent("mem")}, Type: typ})
				}
			}
		case *ast.FuncDecl:
			switch {
			case d.Name.Name == "NewDocStore":
				e, _ := parser.ParseExpr("&DocStore{mem: memory.New()}")
				d.Body.List = []ast.Stmt{&ast.ReturnStmt{Results: []ast.Expr{e, ast.NewIdent("nil")}}}
			case d.Recv != nil && exprString(d.Recv.List[0].Type) == "*DocStore":
				var args []string
				for _, p := range d.Type.Params.List {
					for _, n := range p.Names {
						args = append(args, n.Name)
					}
				}
				call, err := parser.ParseExpr(fmt.Sprintf("%s.mem.%s(%s)", d.Recv.List[0].Names[0].Name, d.Name.Name, strings.Join(args, ", ")))
				if err != nil {
					t.Fatal(err)
				}
				d.Body.List = []ast.Stmt{&ast.ReturnStmt{Results: []ast.Expr{call}}}
			}
		}
	}
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, f); err != nil {
		t.Fatal(err)
	}
	src := bytes.Replace(buf.Bytes(), []byte("import (\n"), []byte("import (\n\t\"github.com/raftkit/raftkit/adapters/storage/memory\"\n"), 1)
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
}

func exprString(e ast.Expr) string {
	var b bytes.Buffer
	_ = format.Node(&b, token.NewFileSet(), e)
	return b.String()
}

func TestCommandLineErrors(t *testing.T) {
	mod := tempModule(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage"},
		{[]string{"cache", "X"}, 2, "unknown command"},
		{[]string{"storage"}, 2, "<Name> is the exported type"},
		{[]string{"storage", "docStore", "-o", filepath.Join(mod, "x")}, 2, "exported Go identifier"},
		{[]string{"storage", "DocStore", "-shape", "pubsub", "-o", filepath.Join(mod, "x")}, 2, "unknown shape"},
		{[]string{"diff", "cache"}, 2, "want storage or network"},
		{[]string{"version"}, 0, "raftgen"},
		{[]string{"storage", "-h"}, 0, "-shape"},
	} {
		code, msg := raftgen(t, c.args...)
		if code != c.code || !strings.Contains(msg, c.want) {
			t.Errorf("raftgen %v: exit %d, %q; want exit %d and %q", c.args, code, msg, c.code, c.want)
		}
	}
}

// TestInitGenerateDiff drives the raftgen.yaml workflow in a fresh module.
func TestInitGenerateDiff(t *testing.T) {
	mod := tempModule(t)
	cfg := filepath.Join(mod, "raftgen.yaml")
	if code, msg := raftgen(t, "init", "-f", cfg, "-kind", "network", "-name", "QueueNet", "-shape", "pubsub"); code != 0 {
		t.Fatalf("init: exit %d: %s", code, msg)
	}
	if code, msg := raftgen(t, "init", "-f", cfg); code != 1 || !strings.Contains(msg, "exists") {
		t.Fatalf("init over an existing file: exit %d: %s", code, msg)
	}
	if code, msg := raftgen(t, "generate", "-f", cfg); code != 0 || !strings.Contains(msg, "wrote queuenet/queue_net_gen.go") {
		t.Fatalf("generate: exit %d: %s", code, msg)
	}
	goCmd(t, mod, "mod", "tidy", "-e")
	goCmd(t, mod, "vet", "./...")
	if code, msg := raftgen(t, "diff", "-f", cfg); code != 0 {
		t.Fatalf("diff after generate: exit %d: %s", code, msg)
	}
	if code, msg := raftgen(t, "generate", "-f", cfg); code != 0 || !strings.Contains(msg, "kept queuenet/queue_net.go") {
		t.Fatalf("second generate: exit %d: %s", code, msg)
	}
	if err := os.WriteFile(filepath.Join(mod, "queuenet", "queue_net_gen.go"), []byte("package queuenet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, msg := raftgen(t, "diff", "-f", cfg); code != 1 || !strings.Contains(msg, "out of date") {
		t.Fatalf("diff of a stale file: exit %d: %s", code, msg)
	}
	if err := os.WriteFile(cfg, []byte("scaffolds:\n  - kind: storage\n    name: X\n    dir: ./x\n    colour: blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, msg := raftgen(t, "generate", "-f", cfg); code != 1 || !strings.Contains(msg, "colour") {
		t.Fatalf("generate with an unknown field: exit %d: %s", code, msg)
	}
}
