package gen

import (
	"fmt"
	"strings"

	"github.com/dave/jennifer/jen"
)

const (
	storagetestPkg = "github.com/raftkit/raftkit/raft/storagetest"
	networktestPkg = "github.com/raftkit/raftkit/raft/networktest"
)

// shapeOf is what a backend shape adds to the scaffold: fields of the main
// type, the constructor's parameters (and the arguments the test passes),
// and notes on how that kind of backend meets the contracts.
type shapeOf struct {
	fields      []jen.Code
	params      []jen.Code
	assign      jen.Dict
	testArgs    []jen.Code
	notes       []string
	extraDecls  []jen.Code
	description string
}

func shape(s Spec) shapeOf {
	switch {
	case s.Kind == Storage && s.Shape == "sql":
		return shapeOf{
			description: "a table-based SQL store",
			fields:      []jen.Code{jen.Id("db").Op("*").Qual("database/sql", "DB"), jen.Id("node").Qual(RaftDataPackage, "NodeID")},
			params:      []jen.Code{jen.Id("db").Op("*").Qual("database/sql", "DB"), jen.Id("node").Qual(RaftDataPackage, "NodeID")},
			assign:      jen.Dict{jen.Id("db"): jen.Id("db"), jen.Id("node"): jen.Id("node")},
			testArgs:    []jen.Code{jen.Nil(), jen.Lit(1)},
			notes: []string{
				"Suggested schema, every row keyed by node so that one database serves many:",
				"  entries(node, idx, term, type, data) primary key (node, idx)",
				"  hard_state(node, term, vote, commit) primary key (node)",
				"  snapshots(node, id, idx, term, membership, committed) and snapshot_chunks(node, id, seq, data)",
				"Save is one transaction: DELETE entries at or after the first new index, INSERT the batch,",
				"UPDATE the hard state. Refuse to open on a server that acknowledges commits before they are",
				"durable (for example PostgreSQL's synchronous_commit = off).",
			},
		}
	case s.Kind == Storage && s.Shape == "kv":
		return shapeOf{
			description: "a key-value store",
			fields:      []jen.Code{jen.Id("kv").Id("KV"), jen.Id("prefix").String()},
			params:      []jen.Code{jen.Id("kv").Id("KV"), jen.Id("prefix").String()},
			assign:      jen.Dict{jen.Id("kv"): jen.Id("kv"), jen.Id("prefix"): jen.Id("prefix")},
			testArgs:    []jen.Code{jen.Nil(), jen.Lit("test")},
			notes: []string{
				"Suggested keys under prefix: hardstate; entry/<index, fixed-width big-endian> so that",
				"ranges scan in order; first (the first index); snapshot/<id>/meta and snapshot/<id>/<seq>.",
				"Save needs one atomic batch (the truncated suffix, the new entries and the hard state",
				"together); a store without multi-key atomicity needs a write-ahead record of its own.",
			},
			extraDecls: []jen.Code{
				jen.Comment("KV is the part of your key-value store the scaffold needs; adapt it to your client."),
				jen.Type().Id("KV").Interface(
					jen.Id("Get").Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("key").String()).Params(jen.Index().Byte(), jen.Error()),
					jen.Comment("Apply writes puts and deletes atomically and durably."),
					jen.Id("Apply").Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("puts").Map(jen.String()).Index().Byte(), jen.Id("deletes").Index().String()).Error(),
					jen.Comment("Scan returns the pairs with keys in [from, to), in key order, at most limit."),
					jen.Id("Scan").Params(jen.Id("ctx").Qual("context", "Context"), jen.List(jen.Id("from"), jen.Id("to")).String(), jen.Id("limit").Int()).Params(jen.Index().Index(jen.Lit(2)).Index().Byte(), jen.Error()),
				),
			},
		}
	case s.Kind == Storage && s.Shape == "file":
		return shapeOf{
			description: "an append-only file",
			fields:      []jen.Code{jen.Id("dir").String()},
			params:      []jen.Code{jen.Id("dir").String()},
			assign:      jen.Dict{jen.Id("dir"): jen.Id("dir")},
			testArgs:    []jen.Code{jen.Id("t").Dot("TempDir").Call()},
			notes: []string{
				"Append records (a length, a checksum, the entry) and fsync before Save returns; write the",
				"hard state as a record too, or to a file replaced by rename after its own fsync (and the",
				"directory's). On open, replay the records and cut a torn tail. See adapters/storage/disk.",
			},
		}
	case s.Kind == Network && s.Shape == "reqrep":
		return shapeOf{
			description: "a request-reply transport",
			fields:      []jen.Code{jen.Id("call").Func().Params(jen.Id("ctx").Qual("context", "Context"), jen.Id("addr").String(), jen.Id("payload").Index().Byte()).Error()},
			notes: []string{
				"Send queues messages per peer; a goroutine per peer encodes batches with wire.AppendBatch",
				"(stamped with the cluster ID) and calls the peer, never blocking Send on a slow peer.",
				"The serving side decodes with wire.DecodeBatch and hands the messages to the Handler.",
			},
		}
	case s.Kind == Network && s.Shape == "pubsub":
		return shapeOf{
			description: "a publish-subscribe transport",
			fields: []jen.Code{
				jen.Id("publish").Func().Params(jen.Id("topic").String(), jen.Id("payload").Index().Byte()).Error(),
				jen.Id("subscribe").Func().Params(jen.Id("topic").String(), jen.Id("fn").Func().Params(jen.Index().Byte())).Params(jen.Func().Params(), jen.Error()),
			},
			notes: []string{
				"Each node subscribes to a topic of its own, named from the cluster and node IDs; Send",
				"packs messages per peer into payloads below the broker's size limit with wire.AppendBatch",
				"and publishes them; see adapters/network/nats.",
			},
		}
	}
	return shapeOf{}
}

// implFile is the user-owned file: the types, their constructor and every
// method with its contract and a "not implemented" body.
func implFile(is *Interfaces, s Spec) (*jen.File, error) {
	f := jen.NewFile(s.Package)
	sh := shape(s)
	f.PackageComment(fmt.Sprintf("Package %s was scaffolded by raftgen: fill in each method, following the", s.Package))
	f.PackageComment("contract written above it, until the conformance test in this package passes.")
	f.Comment("Regenerate the interface checks after upgrading raftkit (add raftgen to the module's")
	f.Comment("tools first: go get -tool github.com/raftkit/raftkit/cmd/raftgen):")
	f.Comment("")
	f.Comment("//go:generate " + s.Command())
	f.Line()
	f.Comment("errNotImplemented is what each method returns until it is written.")
	f.Var().Id("errNotImplemented").Op("=").Qual("errors", "New").Call(jen.Lit(s.Package + ": not implemented"))
	for _, d := range sh.extraDecls {
		f.Add(d)
	}
	main := s.types()[0]
	iface, ok := is.Lookup(main.iface)
	if !ok {
		return nil, fmt.Errorf("%w: raft.%s", ErrLoad, main.iface)
	}
	doc := fmt.Sprintf("%s implements raft.%s", s.Name, main.iface)
	if sh.description != "" {
		doc += " on " + sh.description
	}
	f.Comment(doc + ".")
	for _, n := range sh.notes {
		f.Comment(n)
	}
	f.Comment("")
	for _, line := range strings.Split(strings.TrimSpace(iface.Doc), "\n") {
		f.Comment(line)
	}
	fields := append([]jen.Code{jen.Comment("TODO: your backend's handles and state.")}, sh.fields...)
	if s.Kind == Network {
		fields = append(fields, jen.Id("clusterID").Uint64(), jen.Id("id").Qual(RaftDataPackage, "NodeID"), jen.Id("addr").String())
	}
	f.Type().Id(s.Name).Struct(fields...)
	f.Add(constructor(s, sh))
	for _, t := range s.types() {
		it, ok := is.Lookup(t.iface)
		if !ok {
			return nil, fmt.Errorf("%w: raft.%s", ErrLoad, t.iface)
		}
		if t.typ != s.Name {
			f.Comment(fmt.Sprintf("%s implements raft.%s: it receives a snapshot's bytes.", t.typ, t.iface))
			f.Type().Id(t.typ).Struct(jen.Comment("TODO: where the snapshot's bytes go until Commit."))
		}
		for _, m := range it.Methods {
			code, err := stub(s, t.typ, m)
			if err != nil {
				return nil, err
			}
			f.Add(code)
		}
	}
	if s.Kind == Network {
		f.Comment("Addr is the address peers reach this node at (the conformance suite asks for it).")
		f.Func().Params(jen.Id(s.Receiver).Op("*").Id(s.Name)).Id("Addr").Params().String().Block(jen.Return(jen.Id(s.Receiver).Dot("addr")))
	}
	return f, nil
}

func constructor(s Spec, sh shapeOf) jen.Code {
	name := "New" + s.Name
	if s.Kind == Network {
		return jen.Comment(fmt.Sprintf("%s returns node id's transport in cluster clusterID, reachable at addr (pick an", name)).Line().
			Comment("address when addr is empty). Nothing is delivered before Start.").Line().
			Func().Id(name).Params(jen.Id("clusterID").Uint64(), jen.Id("id").Qual(RaftDataPackage, "NodeID"), jen.Id("addr").String()).
			Params(jen.Op("*").Id(s.Name), jen.Error()).
			Block(jen.Return(jen.Op("&").Id(s.Name).Values(jen.Dict{jen.Id("clusterID"): jen.Id("clusterID"), jen.Id("id"): jen.Id("id"), jen.Id("addr"): jen.Id("addr")}), jen.Nil()))
	}
	return jen.Comment(fmt.Sprintf("%s opens the store: a new one, or the same data as an earlier open (a restart).", name)).Line().
		Func().Id(name).Params(sh.params...).Params(jen.Op("*").Id(s.Name), jen.Error()).
		Block(jen.Return(jen.Op("&").Id(s.Name).Values(sh.assign), jen.Nil()))
}

// testFile is the user-owned test: the conformance suite and its benchmark.
func testFile(s Spec) *jen.File {
	f := jen.NewFile(s.Package)
	tb := jen.Id("t").Qual("testing", "TB")
	if s.Kind == Storage {
		open := func() []jen.Code {
			return []jen.Code{
				jen.List(jen.Id("s"), jen.Err()).Op(":=").Id("New" + s.Name).Call(shape(s).testArgs...),
				jen.If(jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err())),
				jen.Return(jen.Id("s")),
			}
		}
		f.Comment("factory opens stores for the conformance suite. ReopenFunc must open the same data")
		f.Comment("again, as a process restart would: adjust both to your backend.")
		f.Var().Id("factory").Op("=").Qual(storagetestPkg, "FactoryFuncs").Values(jen.Dict{
			jen.Id("NewFunc"): jen.Func().Params(tb).Qual(RaftPackage, "Storage").Block(open()...),
			jen.Id("ReopenFunc"): jen.Func().Params(tb, jen.Id("old").Qual(RaftPackage, "Storage")).Qual(RaftPackage, "Storage").Block(
				append([]jen.Code{
					jen.If(jen.Err().Op(":=").Id("old").Dot("Close").Call(), jen.Err().Op("!=").Nil()).Block(jen.Id("t").Dot("Fatal").Call(jen.Err())),
					jen.Comment("TODO: open the data old held."),
				}, open()...)...),
		})
		f.Comment("TestConformance checks every contract of raft.Storage; it names each one that fails.")
		f.Func().Id("TestConformance").Params(jen.Id("t").Op("*").Qual("testing", "T")).Block(jen.Qual(storagetestPkg, "Run").Call(jen.Id("t"), jen.Id("factory")))
		f.Comment("BenchmarkStorage measures appends per second by batch size.")
		f.Func().Id("BenchmarkStorage").Params(jen.Id("b").Op("*").Qual("testing", "B")).Block(jen.Qual(storagetestPkg, "Bench").Call(jen.Id("b"), jen.Id("factory")))
		return f
	}
	f.Comment("factory opens transports for the conformance suite.")
	f.Func().Id("factory").Params(tb).Qual(networktestPkg, "Opener").Block(
		jen.Return(jen.Func().Params(jen.Id("o").Qual(networktestPkg, "Config")).Params(jen.Qual(RaftPackage, "Network"), jen.String(), jen.Error()).Block(
			jen.List(jen.Id("n"), jen.Err()).Op(":=").Id("New"+s.Name).Call(jen.Id("o").Dot("ClusterID"), jen.Id("o").Dot("ID"), jen.Id("o").Dot("Addr")),
			jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(jen.Nil(), jen.Lit(""), jen.Err())),
			jen.Return(jen.Id("n"), jen.Id("n").Dot("Addr").Call(), jen.Nil()),
		)),
	)
	f.Comment("TestConformance checks every contract of raft.Network; it names each one that fails.")
	f.Func().Id("TestConformance").Params(jen.Id("t").Op("*").Qual("testing", "T")).Block(jen.Qual(networktestPkg, "Run").Call(jen.Id("t"), jen.Id("factory")))
	f.Comment("BenchmarkNetwork measures messages and bytes per second.")
	f.Func().Id("BenchmarkNetwork").Params(jen.Id("b").Op("*").Qual("testing", "B")).Block(jen.Qual(networktestPkg, "Bench").Call(jen.Id("b"), jen.Id("factory")))
	return f
}
