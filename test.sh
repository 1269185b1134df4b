#!/usr/bin/env bash
# Runs every test of every module in this repository, with the race
# detector, then the simulator's seeds. CI (.ci/run) runs exactly this.
#
# Each module is tested on its own (GOWORK=off), with the versions its own
# go.mod selects, as a user who requires only that module builds it; the
# modules are the directories listed in go.work.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

modules=$(sed -n 's/^[[:space:]]*\(\.[^[:space:]]*\)$/\1/p' go.work)
for m in $modules; do
	echo "== $m"
	(cd "$m" && GOWORK=off go vet ./... && GOWORK=off go test -race -timeout 15m ./...)
done
echo "== simulator"
GOWORK=off go test -count=1 -timeout 10m -run 'TestSimulation$' ./raft/rafttest
