//go:build race

package rafttest

// raceEnabled is set when tests run under the race detector, which slows
// the single-threaded simulator about tenfold.
const raceEnabled = true
