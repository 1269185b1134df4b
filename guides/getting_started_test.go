package guides

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestGettingStartedCluster builds the program of getting-started.md from
// its "// file:" blocks, exactly as the snippet test assembles them, and
// runs it the way the guide tells the reader to: three processes started
// with -id 1, -id 2 and -id 3 (plus -members with free ports and -data in
// a temporary directory), driven through standard input. It checks what
// the guide shows: a leader is elected, a follower refuses an add and
// names the leader, adds on the leader return the new value, get reads it
// back, every node's local copy agrees, snapshot works, and after the
// leader quits the other two elect a new leader that takes writes, and
// the old leader restarts from its data and catches up.
func TestGettingStartedCluster(t *testing.T) {
	dir, _ := guideModule(t, "getting-started.md")
	bin := filepath.Join(t.TempDir(), "counters")
	if out, err := goCommand(dir, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building the guide's program: %v\n%s", err, out)
	}
	members := fmt.Sprintf("1=%s,2=%s,3=%s", freeAddr(t), freeAddr(t), freeAddr(t))
	data := t.TempDir()
	nodes := map[int]*guideNode{}
	for id := 1; id <= 3; id++ {
		nodes[id] = startGuideNode(t, bin, id, "-id", strconv.Itoa(id), "-members", members, "-data", data)
	}

	leader := agreedLeader(t, nodes)
	for id, n := range nodes {
		if id != leader {
			n.send("add apples 5")
			n.expect(t, `^not the leader: type it in node \d+'s terminal`)
			break
		}
	}
	onLeader(t, nodes, "add apples 5", `^apples = 5$`)
	onLeader(t, nodes, "add apples 3", `^apples = 8$`)
	onLeader(t, nodes, "get apples", `^apples = 8 \(linearizable read at index \d+\)$`)
	for _, n := range nodes {
		n.eventuallyLocal(t, "apples", 8)
		n.send("snapshot")
		n.expect(t, `^snapshot taken at index \d+$`)
	}

	// Stop the leader: the other two elect a new one and take writes.
	old := agreedLeader(t, nodes)
	nodes[old].quit(t)
	others := map[int]*guideNode{}
	for id, n := range nodes {
		if id != old {
			others[id] = n
		}
	}
	onLeader(t, others, "add apples 2", `^apples = 10$`)

	// Start it again: it restores its data and catches up.
	nodes[old] = startGuideNode(t, bin, old, "-id", strconv.Itoa(old), "-members", members, "-data", data)
	agreedLeader(t, nodes)
	nodes[old].eventuallyLocal(t, "apples", 10)
	for _, n := range nodes {
		n.quit(t)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// guideWait bounds every wait of the test for one outcome.
const guideWait = 15 * time.Second

// guideNode is one running process of the guide's program.
type guideNode struct {
	id     int
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string  // stdout lines, leader reports excepted
	leader atomic.Int64 // the leader it last reported (0: none)
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed

	mu  sync.Mutex
	log strings.Builder // stdout and stderr, for failure messages
}

var leaderLine = regexp.MustCompile(`^node \d+: (?:leader is node (\d+) at|no leader)`)

// startGuideNode starts the program with args. The process is killed when
// the test ends, if it still runs.
func startGuideNode(t *testing.T, bin string, id int, args ...string) *guideNode {
	t.Helper()
	n := &guideNode{id: id, lines: make(chan string, 1024), exited: make(chan struct{})}
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stderr = logWriter{n}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			n.addLog(line + "\n")
			if m := leaderLine.FindStringSubmatch(line); m != nil {
				l, _ := strconv.Atoi(m[1]) // "" for no leader: 0
				n.leader.Store(int64(l))
				continue
			}
			select {
			case n.lines <- line:
			default: // nobody is waiting for that much output
			}
		}
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-n.exited:
		default:
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
		if t.Failed() {
			t.Logf("node %d output:\n%s", n.id, n.output())
		}
	})
	return n
}

// logWriter appends a process's stderr to its log.
type logWriter struct{ n *guideNode }

func (w logWriter) Write(p []byte) (int, error) {
	w.n.addLog(string(p))
	return len(p), nil
}

func (n *guideNode) addLog(s string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.log.WriteString(s)
}

func (n *guideNode) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

// send types a line into the node's terminal.
func (n *guideNode) send(line string) {
	n.addLog("> " + line + "\n")
	_, _ = io.WriteString(n.stdin, line+"\n")
}

// expect waits for an output line matching one of patterns, skipping
// others, and returns the submatches of the first pattern that matched.
func (n *guideNode) expect(t *testing.T, patterns ...string) []string {
	t.Helper()
	var res []*regexp.Regexp
	for _, p := range patterns {
		res = append(res, regexp.MustCompile(p))
	}
	deadline := time.After(guideWait)
	for {
		select {
		case line := <-n.lines:
			for _, re := range res {
				if m := re.FindStringSubmatch(line); m != nil {
					return m
				}
			}
		case <-n.exited:
			t.Fatalf("node %d exited (%v) while waiting for %q", n.id, n.err, patterns)
		case <-deadline:
			t.Fatalf("node %d: no line matching %q within %v", n.id, patterns, guideWait)
		}
	}
}

// eventuallyLocal types "local NAME" until the node's own copy shows want.
func (n *guideNode) eventuallyLocal(t *testing.T, name string, want int) {
	t.Helper()
	deadline := time.Now().Add(guideWait)
	for {
		n.send("local " + name)
		m := n.expect(t, `^`+name+` = (-?\d+) \(node \d+'s own copy, possibly stale\)$`)
		if m[1] == strconv.Itoa(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: %s = %s, want %d", n.id, name, m[1], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// quit types quit and waits for a clean exit.
func (n *guideNode) quit(t *testing.T) {
	t.Helper()
	n.send("quit")
	select {
	case <-n.exited:
		if n.err != nil {
			t.Fatalf("node %d: quit: %v", n.id, n.err)
		}
	case <-time.After(guideWait):
		t.Fatalf("node %d did not exit within %v of quit", n.id, guideWait)
	}
}

// agreedLeader waits until every node reports the same leader, one of
// them, and returns its ID.
func agreedLeader(t *testing.T, nodes map[int]*guideNode) int {
	t.Helper()
	deadline := time.Now().Add(guideWait)
	for {
		leader, agreed := 0, true
		for _, n := range nodes {
			l := int(n.leader.Load())
			if leader == 0 {
				leader = l
			}
			agreed = agreed && l != 0 && l == leader
		}
		if _, member := nodes[leader]; agreed && member {
			return leader
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes agreed on no leader within %v", guideWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// onLeader types line into the leader's terminal and expects want. If
// that node answers it is not the leader (the leader changed meanwhile;
// the command was not appended), it tries again on the new leader.
func onLeader(t *testing.T, nodes map[int]*guideNode, line, want string) []string {
	t.Helper()
	for range 5 {
		n := nodes[agreedLeader(t, nodes)]
		n.send(line)
		if m := n.expect(t, want, `^not the leader`); !strings.HasPrefix(m[0], "not the leader") {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%q: no node took it as the leader", line)
	return nil
}
