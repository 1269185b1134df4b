package guides

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The code-block convention of the guides:
//
//   - Every fenced block whose info string is exactly "go" is compiled.
//     Other blocks (```sh, ```text, ...) are not.
//   - A block whose first line is "// file: <relative path>" is written at
//     that path of the guide's module, so several blocks can form one
//     package or program. A path may not be absolute, contain "..", name a
//     non-.go file, or be shown twice in one guide.
//   - Any other block is written to its own directory, b<line>/, where
//     <line> is the markdown line of its opening fence.
//
// Each guide gets one temporary module, named example.com/app, which
// requires the raftkit core and adapter modules (replaced by this checkout)
// and every module they and examples/kv require, so blocks may import those
// offline. The module is checked with one "go build ./..." and one "go vet
// ./...".

// guideModulePath is the module path of every guide's temporary module; a
// block importing another package of its guide uses this prefix.
const guideModulePath = "example.com/app"

// block is one ```go block of a guide.
type block struct {
	line int    // markdown line of the opening fence (1-based)
	path string // slash-separated path in the guide's module
	code string // the block's text, ending in a newline
}

// fileDirective matches a block's "// file: <path>" first line.
var fileDirective = regexp.MustCompile(`^//\s*file:\s*(\S+)\s*$`)

// goBlocks returns the ```go blocks of a markdown document, each with the
// path it is written to. It fails on an unclosed block and on a bad or
// repeated "// file:" path.
func goBlocks(md []byte) ([]block, error) {
	var (
		blocks []block
		fence  string // the opening fence of the block being read, or ""
		isGo   bool
		start  int
		body   strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(md))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		if fence == "" {
			if len(line)-len(trimmed) > 3 {
				continue
			}
			marks := len(trimmed) - len(strings.TrimLeft(trimmed, "`"))
			if marks < 3 {
				marks = len(trimmed) - len(strings.TrimLeft(trimmed, "~"))
			}
			if marks >= 3 {
				fence = trimmed[:marks]
				isGo = strings.TrimSpace(trimmed[marks:]) == "go"
				start = n
				body.Reset()
			}
			continue
		}
		if t := strings.TrimSpace(line); strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == "" {
			if isGo {
				blocks = append(blocks, block{line: start, code: body.String()})
			}
			fence = ""
			continue
		}
		body.WriteString(line)
		body.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if fence != "" {
		return nil, fmt.Errorf("line %d: code block is never closed", start)
	}
	seen := map[string]int{}
	for i := range blocks {
		b := &blocks[i]
		first, _, _ := strings.Cut(b.code, "\n")
		m := fileDirective.FindStringSubmatch(strings.TrimSpace(first))
		if m == nil {
			b.path = fmt.Sprintf("b%d/snippet.go", b.line)
			continue
		}
		p := m[1]
		switch {
		case path.IsAbs(p) || filepath.IsAbs(p) || strings.Contains(p, `\`):
			return nil, fmt.Errorf("line %d: file path %q must be relative and slash-separated", b.line, p)
		case p != path.Clean(p) || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../"):
			return nil, fmt.Errorf("line %d: file path %q must be clean and stay in the module (no ..)", b.line, p)
		case !strings.HasSuffix(p, ".go"):
			return nil, fmt.Errorf("line %d: file path %q must name a .go file", b.line, p)
		}
		if prev, ok := seen[p]; ok {
			return nil, fmt.Errorf("line %d: file path %q was already shown at line %d", b.line, p, prev)
		}
		seen[p] = b.line
		b.path = p
	}
	return blocks, nil
}

// repoRoot is this checkout, which the guide modules replace raftkit with.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), ".."))
}

// tempModule makes an empty module, guideModulePath, in a temporary
// directory: it requires the core module and every adapter module of this
// repository (replaced by this checkout's directories, as listed in
// go.work), and every module they and examples/kv require, with their go.sum lines, so
// that it builds offline from the module cache.
func tempModule(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := "1.26.0"
	var requires, replaces, sums strings.Builder
	seenSum := map[string]bool{}
	for _, line := range strings.Split(string(work), "\n") {
		dir := strings.TrimSpace(line)
		if dir != "." && dir != "./examples/kv" && !strings.HasPrefix(dir, "./adapters/") {
			continue // the guides use the core, the adapters and what the example uses (OpenTelemetry's SDK)
		}
		abs := filepath.Join(root, filepath.FromSlash(dir))
		gomod, err := os.ReadFile(filepath.Join(abs, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		inRequire := false
		for _, line := range strings.Split(string(gomod), "\n") {
			t := strings.TrimSpace(line)
			switch {
			case inRequire && t == ")":
				inRequire = false
			case inRequire:
				if !strings.HasPrefix(t, "github.com/raftkit/") {
					requires.WriteString("require " + t + "\n")
				}
			case t == "require (":
				inRequire = true
			case strings.HasPrefix(t, "module "):
				path := strings.TrimSpace(strings.TrimPrefix(t, "module "))
				fmt.Fprintf(&requires, "require %s v0.0.0\n", path)
				fmt.Fprintf(&replaces, "replace %s => %s\n", path, abs)
			case strings.HasPrefix(t, "require ") && !strings.Contains(t, "github.com/raftkit/"):
				requires.WriteString(line + "\n")
			case strings.HasPrefix(t, "go ") && dir == ".":
				goVersion = strings.TrimSpace(strings.TrimPrefix(t, "go "))
			}
		}
		sum, err := os.ReadFile(filepath.Join(abs, "go.sum"))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(sum), "\n") {
			if l != "" && !seenSum[l] {
				seenSum[l] = true
				sums.WriteString(l + "\n")
			}
		}
	}
	mod := fmt.Sprintf("module %s\n\ngo %s\n\n%s\n%s", guideModulePath, goVersion, requires.String(), replaces.String())
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// guideModule reads a guide (a file name in this directory), writes its
// ```go blocks into a fresh temporary module, and returns the module's
// directory and the blocks.
func guideModule(t *testing.T, guide string) (string, []block) {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(repoRoot(t), "guides", guide))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := goBlocks(md)
	if err != nil {
		t.Fatalf("%s: %v", guide, err)
	}
	dir := tempModule(t)
	for _, b := range blocks {
		file := filepath.Join(dir, filepath.FromSlash(b.path))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(b.code), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, blocks
}

// goCommand returns the go command with args, run offline in dir.
func goCommand(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off")
	return cmd
}

// fileLine matches "path/file.go:12" or "path/file.go:12:5" in compiler
// and vet output.
var fileLine = regexp.MustCompile(`([\w./\\-]+\.go):(\d+)(:\d+)?`)

// annotate adds to each "file.go:N" of go's output the guide line it
// comes from, e.g. "b12/snippet.go:3:5 [storage.md:15]", and returns the
// markdown lines of the blocks named.
func annotate(out, dir, guide string, blocks []block) (string, []int) {
	byPath := map[string]block{}
	for _, b := range blocks {
		byPath[b.path] = b
	}
	named := map[int]bool{}
	text := fileLine.ReplaceAllStringFunc(out, func(s string) string {
		m := fileLine.FindStringSubmatch(s)
		p := filepath.ToSlash(m[1])
		p = strings.TrimPrefix(p, filepath.ToSlash(dir)+"/")
		p = strings.TrimPrefix(p, "./")
		b, ok := byPath[p]
		if !ok {
			return s
		}
		named[b.line] = true
		n, _ := strconv.Atoi(m[2])
		return fmt.Sprintf("%s [%s:%d]", s, guide, b.line+n)
	})
	var lines []int
	for l := range named {
		lines = append(lines, l)
	}
	sort.Ints(lines)
	return text, lines
}

// TestGuideSnippets compiles and vets the ```go blocks of every guide,
// one module and one build per guide. A failure names the markdown line
// of each block the go command complains about.
func TestGuideSnippets(t *testing.T) {
	guides, err := filepath.Glob(filepath.Join(repoRoot(t), "guides", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(guides)
	for _, g := range guides {
		guide := filepath.Base(g)
		t.Run(guide, func(t *testing.T) {
			dir, blocks := guideModule(t, guide)
			if len(blocks) == 0 {
				return
			}
			for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
				out, err := goCommand(dir, args...).CombinedOutput()
				if err != nil {
					text, lines := annotate(string(out), dir, guide, blocks)
					if strings.Contains(text, "GOPROXY=off") {
						text += "\n(the module cache lacks a module: run \"go mod download\" in the repository first)"
					}
					t.Fatalf("go %s: %v\nfailing blocks start at %s lines %v\n%s",
						strings.Join(args, " "), err, guide, lines, text)
				}
			}
		})
	}
}
