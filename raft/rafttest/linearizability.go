package rafttest

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// KVResult is the outcome of a KV operation as a client saw it.
type KVResult struct {
	// Value is what a Get returned.
	Value string
	// Swapped is what a CAS returned.
	Swapped bool
	// Unknown marks a write whose outcome the client never learned (a
	// timeout, a crash): it may or may not have taken effect.
	Unknown bool
}

// History records the KV operations of concurrent clients for a
// linearizability check. Times are any monotonic clock's (real or
// simulated) in the same unit. It is safe for concurrent use.
type History struct {
	mu  sync.Mutex
	ops []porcupine.Operation
}

// Record adds an operation that completed: its call and return times and
// its result.
func (h *History) Record(client int, op KVOp, call, ret int64, res KVResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: op, Call: call, Output: res, Return: ret})
}

// RecordUnknown adds a write whose outcome is unknown. It may have taken
// effect at any point after call, or never: it is given no return time, so
// the checker may place it anywhere after its call, including after every
// other operation (which is the same as never). A read with an unknown
// outcome constrains nothing and should simply not be recorded.
func (h *History) RecordUnknown(client int, op KVOp, call int64) {
	if op.Kind == KVGet {
		return
	}
	h.Record(client, op, call, math.MaxInt64, KVResult{Unknown: true})
}

// Len returns the number of operations recorded.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// CheckResult is the verdict of a linearizability check.
type CheckResult struct {
	// OK is true when the history is linearizable.
	OK bool
	// TimedOut is true when the checker gave up; OK is then false.
	TimedOut bool
	// Ops is the number of operations checked.
	Ops  int
	info porcupine.LinearizationInfo
}

// Check decides whether the history is linearizable against a sequential
// string map, giving up after timeout.
func (h *History) Check(timeout time.Duration) CheckResult {
	h.mu.Lock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	h.mu.Unlock()
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, timeout)
	return CheckResult{OK: res == porcupine.Ok, TimedOut: res == porcupine.Unknown, Ops: len(ops), info: info}
}

// Visualize writes porcupine's HTML view of the checked history to path.
func (r CheckResult) Visualize(path string) error {
	return porcupine.VisualizePath(kvModel, r.info, path)
}

// kvModel is the sequential specification: one register per key
// (porcupine checks each key's partition separately).
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(KVOp).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		v := state.(string)
		op := input.(KVOp)
		res := output.(KVResult)
		switch op.Kind {
		case KVGet:
			return res.Value == v, v
		case KVPut:
			return true, op.Value
		case KVCAS:
			swapped := v == op.Old
			next := v
			if swapped {
				next = op.Value
			}
			return res.Unknown || res.Swapped == swapped, next
		}
		return false, v
	},
	DescribeOperation: func(input, output any) string {
		op := input.(KVOp)
		res := output.(KVResult)
		var b strings.Builder
		switch op.Kind {
		case KVGet:
			fmt.Fprintf(&b, "get(%s) -> %q", op.Key, res.Value)
		case KVPut:
			fmt.Fprintf(&b, "put(%s, %q)", op.Key, op.Value)
		case KVCAS:
			fmt.Fprintf(&b, "cas(%s, %q, %q) -> %v", op.Key, op.Old, op.Value, res.Swapped)
		}
		if res.Unknown {
			b.WriteString(" (unknown)")
		}
		return b.String()
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state.(string)) },
}
