package gen

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Errors of Write and Diff.
var (
	// ErrDir is returned for an output directory that cannot be used: not
	// a directory, not writable, or holding a different package.
	ErrDir = errors.New("gen: unusable output directory")
	// ErrStale is returned by Diff when generated files differ from what
	// raftgen would write now.
	ErrStale = errors.New("gen: generated files are out of date")
)

// WriteOptions control Write.
type WriteOptions struct {
	// Force overwrites user-owned files that exist.
	Force bool
	// AddMissing appends stubs to an existing user-owned implementation
	// for methods the interfaces gained since it was generated.
	AddMissing bool
}

// Result says what Write did with each file.
type Result struct {
	Written, Kept, Extended []string
}

// Write writes files into dir (created if missing): generated files always,
// user-owned ones only when absent (or with Force). With AddMissing, stubs
// for methods missing from an existing implementation file are appended to
// it.
func Write(dir string, spec Spec, files []File, o WriteOptions) (Result, error) {
	var res Result
	spec, err := spec.withDefaults()
	if err != nil {
		return res, err
	}
	if err := checkDir(dir, spec.Package); err != nil {
		return res, err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		_, statErr := os.Stat(path)
		exists := statErr == nil
		switch {
		case f.Owned && exists && o.AddMissing && strings.HasSuffix(f.Name, ".go") && !strings.HasSuffix(f.Name, "_test.go"):
			added, err := appendMissing(path, f.Data)
			if err != nil {
				return res, err
			}
			if added {
				res.Extended = append(res.Extended, f.Name)
			} else {
				res.Kept = append(res.Kept, f.Name)
			}
			continue
		case f.Owned && exists && !o.Force:
			res.Kept = append(res.Kept, f.Name)
			continue
		}
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			return res, fmt.Errorf("%w: %w", ErrDir, err)
		}
		res.Written = append(res.Written, f.Name)
	}
	return res, nil
}

// checkDir makes dir if needed and checks that it is writable and holds no
// other package.
func checkDir(dir, pkg string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%w: %w", ErrDir, err)
	}
	probe, err := os.CreateTemp(dir, ".raftgen-probe-*")
	if err != nil {
		return fmt.Errorf("%w: %s is not writable: %w", ErrDir, dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	names, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, n := range names {
		f, err := parser.ParseFile(token.NewFileSet(), n, nil, parser.PackageClauseOnly)
		if err != nil {
			continue
		}
		have := f.Name.Name
		if have != pkg && have != pkg+"_test" {
			return fmt.Errorf("%w: %s holds package %s (in %s), not %s: choose another directory or -pkg %s",
				ErrDir, dir, have, filepath.Base(n), pkg, have)
		}
	}
	return nil
}

// appendMissing appends to the file at path the functions of generated
// whose methods it lacks, and reports whether it added any.
func appendMissing(path string, generated []byte) (bool, error) {
	have, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	fset := token.NewFileSet()
	old, err := parser.ParseFile(fset, path, have, 0)
	if err != nil {
		return false, fmt.Errorf("gen: parsing %s to add missing methods: %w", path, err)
	}
	existing := methodSet(old)
	gfset := token.NewFileSet()
	gen, err := parser.ParseFile(gfset, "", generated, parser.ParseComments)
	if err != nil {
		return false, err
	}
	var add []string
	for _, d := range gen.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Recv == nil {
			continue
		}
		if existing[recvName(fd)+"."+fd.Name.Name] {
			continue
		}
		start := fd.Pos()
		if fd.Doc != nil {
			start = fd.Doc.Pos()
		}
		add = append(add, string(generated[gfset.Position(start).Offset:gfset.Position(fd.End()).Offset]))
	}
	if len(add) == 0 {
		return false, nil
	}
	sort.Strings(add)
	var b bytes.Buffer
	b.Write(bytes.TrimRight(have, "\n"))
	b.WriteString("\n")
	for _, a := range add {
		b.WriteString("\n" + a + "\n")
	}
	return true, os.WriteFile(path, b.Bytes(), 0o644)
}

func methodSet(f *ast.File) map[string]bool {
	out := map[string]bool{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv != nil {
			out[recvName(fd)+"."+fd.Name.Name] = true
		}
	}
	return out
}

func recvName(fd *ast.FuncDecl) string {
	t := fd.Recv.List[0].Type
	if st, ok := t.(*ast.StarExpr); ok {
		t = st.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}

// Diff compares the generated (not user-owned) files with those in dir and
// returns an error wrapping ErrStale naming the ones that differ or are
// missing.
func Diff(dir string, files []File) error {
	var stale []string
	for _, f := range files {
		if f.Owned {
			continue
		}
		have, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil || !bytes.Equal(have, f.Data) {
			stale = append(stale, f.Name)
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("%w: %s (regenerate with raftgen)", ErrStale, strings.Join(stale, ", "))
	}
	return nil
}
