// Package compat runs real Go Kafka clients (franz-go, sarama, kafka-go)
// against one broker: a fresh Vltava started by TestMain, or the broker named
// by KAFKA_BOOTSTRAP (e.g. Apache Kafka from ../kafka-reference.sh).
//
// Every scenario asserts exact content (keys, values, headers, partitions,
// offsets, counts, order), uses its own topic and group names, and is bounded
// by a context deadline.
package compat

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bootstrap is the "host:port" every scenario connects to.
var bootstrap string

// brokerKind is "vltava" (started here) or "external" (KAFKA_BOOTSTRAP).
var brokerKind string

var readyLine = regexp.MustCompile(`vltava listening on (\S+:\d+)`)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if b := os.Getenv("KAFKA_BOOTSTRAP"); b != "" {
		bootstrap, brokerKind = b, "external"
		fmt.Fprintf(os.Stderr, "compat-go: broker %s (KAFKA_BOOTSTRAP)\n", b)
		return m.Run()
	}
	b, err := startVltava()
	if err != nil {
		fmt.Fprintf(os.Stderr, "compat-go: %v\n", err)
		return 2
	}
	bootstrap, brokerKind = b.addr, "vltava"
	fmt.Fprintf(os.Stderr, "compat-go: vltava (pid %d) on %s\n", b.cmd.Process.Pid, b.addr)
	code := m.Run()
	if err := b.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "compat-go: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "---- vltava stderr (%s) ----\n%s\n----\n", b.logPath, b.logTail(200))
	} else {
		os.RemoveAll(b.dir)
	}
	return code
}

type vltava struct {
	cmd     *exec.Cmd
	dir     string
	logPath string
	addr    string
	exited  chan struct{}
	waitErr error
}

func (v *vltava) logTail(n int) string {
	data, _ := os.ReadFile(v.logPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startVltava starts $VLTAVA_BIN (default: the repository's
// target/release/vltava) on a free loopback port with a temporary data
// directory and waits for its "vltava listening on HOST:PORT" line (on stdout
// or stderr), at most 20 s.
func startVltava() (*vltava, error) {
	bin := os.Getenv("VLTAVA_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "..", "target", "release", "vltava")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no broker binary at %s (cargo build --release, or set VLTAVA_BIN / KAFKA_BOOTSTRAP)", bin)
	}
	dir, err := os.MkdirTemp("", "vltava-compat-go-")
	if err != nil {
		return nil, err
	}
	v := &vltava{dir: dir, logPath: filepath.Join(dir, "stderr.log"), exited: make(chan struct{})}
	logFile, err := os.Create(v.logPath)
	if err != nil {
		return nil, err
	}
	v.cmd = exec.Command(bin, "server",
		"--listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "data"),
		"--admin-listen", "off",
		"--override", "group.initial.rebalance.delay.ms=0")
	stdout, err := v.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := v.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := v.cmd.Start(); err != nil {
		return nil, err
	}
	found := make(chan string, 2)
	var logMu sync.Mutex
	scan := func(r io.Reader) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			fmt.Fprintln(logFile, line)
			logMu.Unlock()
			if m := readyLine.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}
	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); scan(stdout) }()
	go func() { defer pipes.Done(); scan(stderr) }()
	go func() {
		pipes.Wait() // Wait must not run before the pipes are drained
		v.waitErr = v.cmd.Wait()
		logFile.Close()
		close(v.exited)
	}()
	select {
	case v.addr = <-found:
		return v, nil
	case <-v.exited:
		return nil, fmt.Errorf("vltava exited before it was ready (%v)\n%s", v.waitErr, v.logTail(80))
	case <-time.After(20 * time.Second):
		v.cmd.Process.Kill()
		<-v.exited
		return nil, fmt.Errorf("vltava did not print its ready line within 20 s\n%s", v.logTail(80))
	}
}

// stop sends SIGTERM to the broker's PID and waits (15 s, then SIGKILL).
func (v *vltava) stop() error {
	if err := v.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM to vltava pid %d: %v", v.cmd.Process.Pid, err)
	}
	select {
	case <-v.exited:
	case <-time.After(15 * time.Second):
		v.cmd.Process.Kill()
		<-v.exited
		return fmt.Errorf("vltava pid %d ignored SIGTERM for 15 s; killed", v.cmd.Process.Pid)
	}
	if v.waitErr != nil {
		return fmt.Errorf("vltava pid %d stopped uncleanly: %v", v.cmd.Process.Pid, v.waitErr)
	}
	return nil
}

// --- helpers shared by the scenarios ---------------------------------------

// name returns a topic or group name unique to this run.
func name(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("go-%s-%s", prefix, hex.EncodeToString(b))
}

// deadline gives a scenario a hard time limit.
func deadline(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// rec is a record as the scenarios compare it.
type rec struct {
	Partition int32
	Offset    int64
	Key       string
	Value     string
	Headers   string // "k=v;k=v" in order
}

func (r rec) String() string {
	return fmt.Sprintf("p%d@%d %q=%q [%s]", r.Partition, r.Offset, r.Key, r.Value, r.Headers)
}

// murmur2 is the Java client's default key partitioner hash
// (org.apache.kafka.common.utils.Utils.murmur2); partition =
// (murmur2(key) & 0x7fffffff) % partitions.
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	n := length / 4
	for i := 0; i < n; i++ {
		k := uint32(data[i*4]) | uint32(data[i*4+1])<<8 | uint32(data[i*4+2])<<16 | uint32(data[i*4+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n*4:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

func javaPartition(key string, partitions int) int32 {
	return (murmur2([]byte(key)) & 0x7fffffff) % int32(partitions)
}

// diffRecs fails t with the first difference between want and got.
func diffRecs(t *testing.T, what string, want, got []rec) {
	t.Helper()
	for i := 0; i < len(want) && i < len(got); i++ {
		if want[i] != got[i] {
			t.Fatalf("%s: record %d: want %v, got %v", what, i, want[i], got[i])
		}
	}
	if len(want) != len(got) {
		t.Fatalf("%s: want %d records, got %d", what, len(want), len(got))
	}
}
