package redis_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// redisServer is a private Redis a test starts, kills and restarts. By
// default it runs the way the store needs (append-only file fsynced on every
// write, no eviction); the machine's shared Redis keeps nothing on disk, so
// the tests never use it for data.
type redisServer struct {
	t      fatalfer
	dir    string
	port   int
	args   []string
	cmd    *exec.Cmd
	exited chan struct{}
}

// durableSettings are the settings the store requires.
var durableSettings = []string{"--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction"}

// fatalfer is what the server helpers need of a test; TestMain, which has
// no test, passes one that exits.
type fatalfer interface {
	Helper()
	Fatalf(format string, args ...any)
}

func redisBinary(t fatalfer) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is required on PATH to run these tests: %v", err)
	}
	return p
}

func freePort(t fatalfer) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis starts a server with the given settings (flag, value pairs),
// stopped when the test ends.
func startRedis(t testing.TB, settings ...string) *redisServer {
	t.Helper()
	s := newRedis(t, t.TempDir(), settings...)
	t.Cleanup(s.stop)
	return s
}

// newRedis starts a server keeping its files in dir.
func newRedis(t fatalfer, dir string, settings ...string) *redisServer {
	t.Helper()
	s := &redisServer{t: t, dir: dir, port: freePort(t)}
	s.args = append([]string{"--port", fmt.Sprint(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log")}, settings...)
	s.start()
	return s
}

func (s *redisServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(redisBinary(s.t), s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting redis-server: %v", err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.exited)
	c := goredis.NewClient(&goredis.Options{Addr: s.addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("redis-server exited while starting:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server did not answer within 20s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL: whatever it acknowledged must be in
// its append-only file.
func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

func (s *redisServer) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// client returns a client of the server, closed when the test ends.
func (s *redisServer) client(t testing.TB) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: s.addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
