package disk

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// recordDirSyncs makes syncDir record the directories it is called on, for
// the rest of the test, and returns a function that returns (and forgets)
// those recorded so far. Tests using it must not run in parallel.
func recordDirSyncs(t *testing.T) (take func() []string) {
	t.Helper()
	var (
		mu     sync.Mutex
		synced []string
	)
	orig := syncDir
	syncDir = func(dir string) error {
		mu.Lock()
		synced = append(synced, filepath.Clean(dir))
		mu.Unlock()
		return orig(dir)
	}
	t.Cleanup(func() { syncDir = orig })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		got := synced
		synced = nil
		return got
	}
}

// TestOpenSyncsCreatedDirs checks that Open makes the creation of its
// directory durable: when it creates dir and missing ancestors, it fsyncs
// the parent of each of them, up to the first ancestor that existed, as well
// as dir itself (for wal, snap and LOCK) and, for the first segment, wal;
// and that it syncs no ancestor that it did not add an entry to.
func TestOpenSyncsCreatedDirs(t *testing.T) {
	root := t.TempDir()
	a := filepath.Join(root, "a")
	b := filepath.Join(a, "b")
	dir := filepath.Join(b, "store")
	wal := filepath.Join(dir, "wal")
	take := recordDirSyncs(t)

	// First boot: a, b and store are created.
	s := pOpen(t, dir+"/", Config{}) // a trailing separator is the same path
	check := func(what string, want ...string) {
		t.Helper()
		got := take()
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: synced directories %q, want %q", what, got, want)
		}
	}
	check("first open", root, a, b, dir, wal)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening creates nothing: only dir is synced, as before.
	s = pOpen(t, dir, Config{})
	check("reopen", dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// An existing, empty directory: its parent has nothing new to sync.
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	s = pOpen(t, empty, Config{})
	check("existing empty dir", empty, filepath.Join(empty, "wal"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A relative path: its first existing ancestor is ".".
	t.Chdir(root)
	s = pOpen(t, filepath.Join("rel", "store"), Config{})
	check("relative path", ".", "rel", filepath.Join("rel", "store"), filepath.Join("rel", "store", "wal"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// NoSync skips the new syncs as it skips the others. (createSegment
	// syncs the wal directory regardless.)
	s = pOpen(t, filepath.Join(root, "x", "y"), Config{NoSync: true})
	check("NoSync", filepath.Join(root, "x", "y", "wal"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMissingDirs checks missingDirs on paths with several, one and no
// missing directories.
func TestMissingDirs(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "a", "b", "c")
	if got, want := missingDirs(deep), []string{deep, filepath.Join(root, "a", "b"), filepath.Join(root, "a")}; !slices.Equal(got, want) {
		t.Errorf("missingDirs(%q) = %q, want %q", deep, got, want)
	}
	if got := missingDirs(root); len(got) != 0 {
		t.Errorf("missingDirs(%q) = %q, want none", root, got)
	}
	if got, want := missingDirs(filepath.Join(root, "d")+"/"), []string{filepath.Join(root, "d")}; !slices.Equal(got, want) {
		t.Errorf("missingDirs(%q/d/) = %q, want %q", root, got, want)
	}
}
