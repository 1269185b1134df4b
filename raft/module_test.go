package raft_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCoreModuleStaysLight builds a fresh consumer module that imports
// raft, the disk store and the TCP transport, and checks that its build list
// names none of the heavy modules the optional adapters and tools need: a
// user of the core audits only the standard library, golang.org/x/sys and
// the OpenTelemetry trace API (and what their go.mod files name).
func TestCoreModuleStaysLight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), ".."))
	dir := t.TempDir()
	gomod := "module example.com/consumer\n\ngo 1.26.0\n\nrequire github.com/raftkit/raftkit v0.0.0\n\nreplace github.com/raftkit/raftkit => " + root + "\n"
	main := `package main

import (
	_ "github.com/raftkit/raftkit/adapters/network/tcp"
	_ "github.com/raftkit/raftkit/adapters/storage/disk"
	_ "github.com/raftkit/raftkit/raft"
)

func main() {}
`
	for name, text := range map[string]string{"go.mod": gomod, "main.go": main} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("build", "-o", os.DevNull, ".")
	list := run("list", "-m", "all")
	t.Logf("go list -m all:\n%s", list)
	for _, heavy := range []string{
		"github.com/jackc/", "github.com/redis/", "github.com/nats-io/", "github.com/prometheus/",
		"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/dave/jennifer", "golang.org/x/tools",
		"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters", "github.com/raftkit/raftkit/",
	} {
		for _, line := range strings.Split(list, "\n") {
			if strings.HasPrefix(line, heavy) {
				t.Errorf("a consumer of the core module gets %s", line)
			}
		}
	}
}

// TestCoreBuildsOnEveryOS type-checks the core module, tests included, for
// darwin and windows (go vet with GOOS set): the disk store's locking and
// syncing sit behind build tags, and a missing one shows here on Linux.
func TestCoreBuildsOnEveryOS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), ".."))
	for _, goos := range []string{"darwin", "windows", "freebsd"} {
		cmd := exec.Command("go", "vet", "./...")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH=amd64", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s go vet ./...: %v\n%s", goos, err, out)
		}
	}
}
