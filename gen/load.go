package gen

import (
	"errors"
	"fmt"
	"go/ast"
	"go/types"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

// RaftPackage is the import path of the package whose interfaces the
// scaffolds implement.
const RaftPackage = "github.com/raftkit/raftkit/raft"

// RaftDataPackage is the import path of the data types the interfaces use.
const RaftDataPackage = "github.com/raftkit/raftkit/raft/raftdata"

// Method is one method of an interface to implement, with its contract.
type Method struct {
	Name string
	Sig  *types.Signature
	// Doc is the method's documentation in the raft package: its
	// contract, copied into the scaffold.
	Doc string
}

// Interface is an interface of the raft package, as loaded.
type Interface struct {
	Name    string
	Doc     string
	Methods []Method
}

// Interfaces holds the interfaces raftgen implements, read from the raft
// package the target module builds against, so that a scaffold always
// matches the interfaces of the version in use.
type Interfaces struct {
	byName map[string]*Interface
}

// Lookup returns the named interface of the raft package.
func (is *Interfaces) Lookup(name string) (*Interface, bool) {
	i, ok := is.byName[name]
	return i, ok
}

// ErrLoad is returned when the raft package cannot be loaded or lacks an
// interface raftgen needs.
var ErrLoad = errors.New("gen: loading the raft package")

// Load reads the raft package's interfaces as the module in dir sees it
// (dir "" is the current directory): the version that module requires, or
// this checkout when run inside it.
func Load(dir string) (*Interfaces, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedTypes | packages.NeedSyntax | packages.NeedTypesInfo,
		Dir:  dir,
	}
	pkgs, err := packages.Load(cfg, RaftPackage)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLoad, err)
	}
	if len(pkgs) != 1 {
		return nil, fmt.Errorf("%w: found %d packages for %s", ErrLoad, len(pkgs), RaftPackage)
	}
	p := pkgs[0]
	if len(p.Errors) > 0 {
		return nil, fmt.Errorf("%w: %v (is %s required by the module in %q? run go get %s)", ErrLoad, p.Errors[0], RaftPackage, dir, RaftPackage)
	}
	docs := interfaceDocs(p.Syntax)
	is := &Interfaces{byName: map[string]*Interface{}}
	for _, name := range []string{"Storage", "SnapshotWriter", "Network", "MeasuredNetwork"} {
		obj := p.Types.Scope().Lookup(name)
		if obj == nil {
			return nil, fmt.Errorf("%w: %s.%s not found", ErrLoad, RaftPackage, name)
		}
		it, ok := obj.Type().Underlying().(*types.Interface)
		if !ok {
			return nil, fmt.Errorf("%w: %s.%s is not an interface", ErrLoad, RaftPackage, name)
		}
		d := docs[name]
		out := &Interface{Name: name, Doc: d.doc}
		for k := 0; k < it.NumMethods(); k++ {
			m := it.Method(k)
			doc, ok := d.methods[m.Name()]
			if !ok {
				doc = inheritedDoc(name, m)
			}
			out.Methods = append(out.Methods, Method{Name: m.Name(), Sig: m.Type().(*types.Signature), Doc: doc})
		}
		rank := map[string]int{}
		for i, m := range d.order {
			rank[m] = i + 1
		}
		sort.SliceStable(out.Methods, func(i, j int) bool {
			ri, rj := rank[out.Methods[i].Name], rank[out.Methods[j].Name]
			if ri == 0 {
				ri = len(rank) + 1 // from outside the raft package: last
			}
			if rj == 0 {
				rj = len(rank) + 1
			}
			return ri < rj
		})
		is.byName[name] = out
	}
	return is, nil
}

type ifaceDoc struct {
	doc     string
	methods map[string]string
	order   []string // methods as declared, embedded interfaces' after
}

// interfaceDocs collects the doc comments of the interfaces declared in
// files and of their methods, including methods of embedded raft
// interfaces.
func interfaceDocs(files []*ast.File) map[string]ifaceDoc {
	out := map[string]ifaceDoc{}
	embeds := map[string][]string{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				ts, ok := spec.(*ast.TypeSpec)
				if !ok {
					continue
				}
				it, ok := ts.Type.(*ast.InterfaceType)
				if !ok {
					continue
				}
				doc := ts.Doc
				if doc == nil {
					doc = gd.Doc
				}
				d := ifaceDoc{doc: doc.Text(), methods: map[string]string{}}
				for _, field := range it.Methods.List {
					if len(field.Names) == 0 {
						if id, ok := field.Type.(*ast.Ident); ok {
							embeds[ts.Name.Name] = append(embeds[ts.Name.Name], id.Name)
							d.order = append(d.order, "@"+id.Name) // expanded below
						}
						continue
					}
					for _, n := range field.Names {
						d.methods[n.Name] = strings.TrimSpace(field.Doc.Text())
						d.order = append(d.order, n.Name)
					}
				}
				out[ts.Name.Name] = d
			}
		}
	}
	// Expand embedded raft interfaces in place, in declaration order.
	var expand func(name string, seen map[string]bool) []string
	expand = func(name string, seen map[string]bool) []string {
		var order []string
		for _, m := range out[name].order {
			if e, ok := strings.CutPrefix(m, "@"); ok {
				if !seen[e] {
					seen[e] = true
					for _, em := range expand(e, seen) {
						if _, ok := out[name].methods[em]; !ok {
							out[name].methods[em] = out[e].methods[em]
						}
						order = append(order, em)
					}
				}
				continue
			}
			order = append(order, m)
		}
		return order
	}
	for name := range embeds {
		d := out[name]
		d.order = expand(name, map[string]bool{name: true})
		out[name] = d
	}
	return out
}

// inheritedDoc describes a method that comes from an interface outside the
// raft package (io.Writer's Write).
func inheritedDoc(iface string, m *types.Func) string {
	origin := "an embedded interface"
	if m.Pkg() != nil {
		origin = m.Pkg().Path()
	}
	if r, ok := m.Type().(*types.Signature); ok && r.Recv() != nil {
		if n, ok := types.Unalias(r.Recv().Type()).(*types.Named); ok {
			origin = n.Obj().Pkg().Path() + "." + n.Obj().Name()
		}
	}
	return fmt.Sprintf("%s is required by raft.%s through %s; see that interface's documentation.", m.Name(), iface, origin)
}
