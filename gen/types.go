package gen

import (
	"fmt"
	"go/types"
	"strings"

	"github.com/dave/jennifer/jen"
)

// typeCode writes t as jennifer code, qualifying named types with their
// package so that imports are added. A type from an internal package (not
// importable by the scaffold) is an error: the raft interfaces must only use
// exported packages (raft, raftdata).
func typeCode(t types.Type) (jen.Code, error) {
	switch t := t.(type) {
	case *types.Alias:
		return qual(t.Obj())
	case *types.Named:
		return qual(t.Obj())
	case *types.Basic:
		return jen.Id(t.Name()), nil
	case *types.Pointer:
		c, err := typeCode(t.Elem())
		return jen.Op("*").Add(c), err
	case *types.Slice:
		c, err := typeCode(t.Elem())
		return jen.Index().Add(c), err
	case *types.Array:
		c, err := typeCode(t.Elem())
		return jen.Index(jen.Lit(int(t.Len()))).Add(c), err
	case *types.Map:
		k, err := typeCode(t.Key())
		if err != nil {
			return nil, err
		}
		v, err := typeCode(t.Elem())
		return jen.Map(k).Add(v), err
	case *types.Interface:
		if t.Empty() {
			return jen.Any(), nil
		}
	}
	return nil, fmt.Errorf("gen: cannot write type %s", t)
}

func qual(obj *types.TypeName) (jen.Code, error) {
	if obj.Pkg() == nil {
		return jen.Id(obj.Name()), nil // error, any, comparable
	}
	if strings.Contains(obj.Pkg().Path()+"/", "/internal/") {
		return nil, fmt.Errorf("gen: the interface uses %s.%s from an internal package", obj.Pkg().Path(), obj.Name())
	}
	return jen.Qual(obj.Pkg().Path(), obj.Name()), nil
}

// zeroCode is the zero value of t, for the results of a stub.
func zeroCode(t types.Type) (jen.Code, error) {
	switch u := t.Underlying().(type) {
	case *types.Basic:
		switch {
		case u.Info()&types.IsBoolean != 0:
			return jen.False(), nil
		case u.Info()&types.IsString != 0:
			return jen.Lit(""), nil
		case u.Info()&types.IsNumeric != 0:
			return jen.Lit(0), nil
		}
	case *types.Struct, *types.Array:
		c, err := typeCode(t)
		if err != nil {
			return nil, err
		}
		return jen.Add(c).Values(), nil
	case *types.Pointer, *types.Slice, *types.Map, *types.Interface, *types.Signature, *types.Chan:
		return jen.Nil(), nil
	}
	return nil, fmt.Errorf("gen: no zero value for %s", t)
}

func isError(t types.Type) bool {
	return types.Identical(t, types.Universe.Lookup("error").Type())
}

// signature returns a method's parameters and results as jennifer code,
// naming the parameters as the interface does (p0, p1... where it does
// not).
func signature(sig *types.Signature) (params, results []jen.Code, err error) {
	for i := 0; i < sig.Params().Len(); i++ {
		p := sig.Params().At(i)
		name := p.Name()
		if name == "" || name == "_" {
			name = fmt.Sprintf("p%d", i)
		}
		c, err := typeCode(p.Type())
		if err != nil {
			return nil, nil, err
		}
		if sig.Variadic() && i == sig.Params().Len()-1 {
			c = jen.Op("...").Add(typeElem(p.Type()))
		}
		params = append(params, jen.Id(name).Add(c))
	}
	for i := 0; i < sig.Results().Len(); i++ {
		c, err := typeCode(sig.Results().At(i).Type())
		if err != nil {
			return nil, nil, err
		}
		results = append(results, c)
	}
	return params, results, nil
}

func typeElem(t types.Type) jen.Code {
	if s, ok := t.(*types.Slice); ok {
		c, _ := typeCode(s.Elem())
		return c
	}
	c, _ := typeCode(t)
	return c
}
