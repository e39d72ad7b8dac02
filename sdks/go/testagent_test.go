package konorkestra

// The agent every test here talks to: the fake agent all three SDK suites
// share (python -m konorkestra.testing.fakeagent, the real agent's UDS server
// over in-memory state), one process per test, driven through its control
// socket as tests/vectors/README.md describes. This file is only a thin client
// of that control protocol. Without a runnable Python the tests that need it
// are skipped (failed under KONORKESTRA_REQUIRE_ALL=1).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// agentRequest is one request the agent received (the fields tests look at).
type agentRequest struct {
	ID       json.RawMessage `json:"id"`
	Op       string          `json:"op"`
	Group    string          `json:"group"`
	After    int64           `json:"after"`
	Release  string          `json:"release"`
	Status   string          `json:"status"`
	Error    string          `json:"error"`
	Metric   string          `json:"metric"`
	Value    float64         `json:"value"`
	Protocol int             `json:"protocol"`
}

type testAgent struct {
	t    testing.TB
	path string // the protocol socket

	mu      sync.Mutex // one control command at a time
	control net.Conn
	reader  *bufio.Reader
}

var fakeAgentPython = sync.OnceValues(func() (string, error) {
	python := os.Getenv("KONORKESTRA_PYTHON")
	if python == "" {
		python = "../../.venv/bin/python"
	}
	if abs, err := filepath.Abs(python); err == nil && strings.Contains(python, "/") {
		python = abs
	}
	probe := exec.Command(python, "-c", "import konorkestra.testing.fakeagent")
	probe.Dir = "../.."
	if out, err := probe.CombinedOutput(); err != nil {
		return python, fmt.Errorf("fake agent not runnable with %s (set KONORKESTRA_PYTHON; `make venv` creates the default): %v %s",
			python, err, bytes.TrimSpace(out))
	}
	return python, nil
})

// newTestAgent starts the fake agent process with the agent down (start
// serves), and stops it when the test ends.
func newTestAgent(t testing.TB) *testAgent {
	t.Helper()
	python, err := fakeAgentPython()
	if err != nil {
		if os.Getenv("KONORKESTRA_REQUIRE_ALL") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	a := &testAgent{t: t, path: filepath.Join(dir, "agent.sock")}
	ctl := filepath.Join(dir, "control.sock")
	cmd := exec.Command(python, "-m", "konorkestra.testing.fakeagent", "--socket", a.path,
		"--control", ctl, "--stopped", "--exit-with-stdin")
	cmd.Dir = "../.."
	var stderr bytes.Buffer // shown when the test fails
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe() // closing it ends the process, even if this one dies
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("fake agent stderr:\n%s", stderr.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "ready ") {
			t.Fatalf("fake agent said %q; stderr:\n%s", line, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("fake agent not ready after 20 s")
	}
	if a.control, err = net.Dial("unix", ctl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.control.Close() })
	a.reader = bufio.NewReader(a.control)
	return a
}

// command sends one control line and returns the answer; t fails unless it is ok.
func (a *testAgent) command(t testing.TB, cmd []byte) []byte {
	t.Helper()
	var line bytes.Buffer
	if err := json.Compact(&line, cmd); err != nil {
		t.Fatal(err)
	}
	line.WriteByte('\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	a.control.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.control.Write(line.Bytes()); err != nil {
		t.Fatal(err)
	}
	reply, err := a.reader.ReadBytes('\n')
	if err != nil {
		t.Fatalf("control %s: %v", cmd, err)
	}
	var status struct {
		OK bool `json:"ok"`
	}
	if json.Unmarshal(reply, &status); !status.OK {
		t.Fatalf("control %s: %s", cmd, reply)
	}
	return reply
}

func (a *testAgent) do(name string, arg any) []byte {
	a.t.Helper()
	cmd, err := json.Marshal(map[string]any{name: arg})
	if err != nil {
		a.t.Fatal(err)
	}
	return a.command(a.t, cmd)
}

// start makes the agent serve (again); the state outlives stop.
func (a *testAgent) start() *testAgent {
	a.t.Helper()
	a.do("start", map[string]any{})
	return a
}

// stop closes the listener and every connection (the agent "dies").
func (a *testAgent) stop() { a.t.Helper(); a.do("stop", map[string]any{}) }

// mute makes the agent read requests and answer none (or answer again).
func (a *testAgent) mute(on bool) { a.t.Helper(); a.do("mute", on) }

// publish commits release <group>-<seq> with config {"api": {"timeoutMs": seq*100, ...extra}}
// and notifies watchers, like the agent after a commit.
func (a *testAgent) publish(group string, seq int64, extra map[string]any) {
	a.t.Helper()
	api := map[string]any{"timeoutMs": seq * 100}
	for k, v := range extra {
		api[k] = v
	}
	a.do("publish", map[string]any{"group": group, "release": fmt.Sprintf("%s-%d", group, seq),
		"sequence": seq, "digest": fmt.Sprintf("sha256:%064d", seq), "stale": false,
		"config": map[string]any{"api": api}})
}

func (a *testAgent) setStale(group string, stale bool) {
	a.t.Helper()
	a.do("set_stale", map[string]any{"group": group, "stale": stale})
}

// seen returns the requests the agent has handled so far with op (all when
// op is ""): a watch seen here is registered.
func (a *testAgent) seen(op string) []agentRequest {
	a.t.Helper()
	arg := map[string]any{}
	if op != "" {
		arg["op"] = op
	}
	var reply struct{ Requests []agentRequest }
	if err := json.Unmarshal(a.do("requests", arg), &reply); err != nil {
		a.t.Fatal(err)
	}
	return reply.Requests
}

// connections is the number of protocol connections the agent holds open.
func (a *testAgent) connections() int {
	a.t.Helper()
	var reply struct{ Connections int }
	if err := json.Unmarshal(a.do("status", map[string]any{}), &reply); err != nil {
		a.t.Fatal(err)
	}
	return reply.Connections
}

// eventually fails the test unless cond holds within 5 s.
// The optional got describes the state on failure.
func eventually(t *testing.T, what string, cond func() bool, got ...func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, g := range got {
				what += "; have " + g()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
