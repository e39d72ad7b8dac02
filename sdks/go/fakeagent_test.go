package konorkestra

// An in-test agent over a real Unix socket: enough of docs/protocol.md to
// drive the client (hello, get, watch, unwatch, ack, report), with state that
// survives stop/start so reconnects can be tested.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type fakeRelease struct {
	Group    string         `json:"group"`
	Release  string         `json:"release"`
	Sequence int64          `json:"sequence"`
	Digest   string         `json:"digest"`
	Stale    bool           `json:"stale"`
	Config   map[string]any `json:"config"`
}

type fakeRequest struct {
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

type fakeAgent struct {
	t    testing.TB
	path string

	mu       sync.Mutex
	ln       net.Listener
	current  map[string]fakeRelease
	conns    map[*fakeConn]bool
	requests []fakeRequest // every request received, in order
	silent   bool          // accept connections but never answer
}

type fakeConn struct {
	nc      net.Conn
	wmu     sync.Mutex
	watches map[string]*fakeWatch // by group
}

type fakeWatch struct {
	id   json.RawMessage
	last int64
}

func newFakeAgent(t testing.TB) *fakeAgent {
	t.Helper()
	a := &fakeAgent{t: t, path: filepath.Join(t.TempDir(), "agent.sock"),
		current: map[string]fakeRelease{}, conns: map[*fakeConn]bool{}}
	t.Cleanup(a.stop)
	return a
}

func (a *fakeAgent) start() *fakeAgent {
	a.t.Helper()
	ln, err := net.Listen("unix", a.path)
	if err != nil {
		a.t.Fatal(err)
	}
	a.mu.Lock()
	a.ln = ln
	a.mu.Unlock()
	go a.accept(ln)
	return a
}

// stop closes the listener and every connection (the agent "dies").
func (a *fakeAgent) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ln != nil {
		a.ln.Close()
		a.ln = nil
	}
	for c := range a.conns {
		c.nc.Close()
	}
	a.conns = map[*fakeConn]bool{}
}

func (a *fakeAgent) accept(ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c := &fakeConn{nc: nc, watches: map[string]*fakeWatch{}}
		a.mu.Lock()
		a.conns[c] = true
		a.mu.Unlock()
		go a.serve(c)
	}
}

func (a *fakeAgent) serve(c *fakeConn) {
	defer func() {
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
		c.nc.Close()
	}()
	sc := bufio.NewScanner(c.nc)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var req fakeRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			c.send(map[string]any{"id": nil, "ok": false, "error": map[string]any{"code": "bad_request", "message": err.Error()}})
			continue
		}
		a.mu.Lock()
		silent := a.silent
		a.mu.Unlock()
		if !silent {
			a.handle(c, req)
		}
		// Recorded once handled: a test that sees a watch knows it is registered.
		a.mu.Lock()
		a.requests = append(a.requests, req)
		a.mu.Unlock()
	}
}

func (a *fakeAgent) handle(c *fakeConn, req fakeRequest) {
	ok := func(fields map[string]any) {
		fields["id"], fields["ok"] = req.ID, true
		c.send(fields)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch req.Op {
	case "hello":
		ok(map[string]any{"protocol": 1, "agent": map[string]any{"version": "test", "node": "fake"}})
	case "get":
		rel, found := a.current[req.Group]
		if !found {
			c.send(map[string]any{"id": req.ID, "ok": false, "error": map[string]any{"code": "not_found", "message": "no release"}})
			return
		}
		ok(rel.fields())
	case "watch":
		w := &fakeWatch{id: req.ID, last: req.After}
		c.watches[req.Group] = w
		ok(map[string]any{"group": req.Group})
		if rel, found := a.current[req.Group]; found {
			c.notify(w, rel)
		}
	case "ack", "report", "unwatch":
		ok(map[string]any{})
	default:
		c.send(map[string]any{"id": req.ID, "ok": false, "error": map[string]any{"code": "unknown_op", "message": req.Op}})
	}
}

func (r fakeRelease) fields() map[string]any {
	return map[string]any{"group": r.Group, "release": r.Release, "sequence": r.Sequence,
		"digest": r.Digest, "stale": r.Stale, "config": r.Config}
}

func (c *fakeConn) notify(w *fakeWatch, rel fakeRelease) {
	if rel.Sequence <= w.last {
		return
	}
	w.last = rel.Sequence
	ev := rel.fields()
	ev["event"], ev["watch"] = "release", w.id
	c.send(ev)
}

func (c *fakeConn) send(v map[string]any) {
	line, _ := json.Marshal(v)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.Write(append(line, '\n'))
}

// publish commits release <group>-<seq> with config {"api": {"timeoutMs": seq*100, ...extra}}
// and notifies watchers, like the agent after a commit.
func (a *fakeAgent) publish(group string, seq int64, extra map[string]any) fakeRelease {
	api := map[string]any{"timeoutMs": seq * 100}
	for k, v := range extra {
		api[k] = v
	}
	rel := fakeRelease{Group: group, Release: fmt.Sprintf("%s-%d", group, seq), Sequence: seq,
		Digest: fmt.Sprintf("sha256:%064d", seq), Config: map[string]any{"api": api}}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.current[group] = rel
	for c := range a.conns {
		if w := c.watches[group]; w != nil {
			c.notify(w, rel)
		}
	}
	return rel
}

func (a *fakeAgent) setStale(group string, stale bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rel := a.current[group]
	rel.Stale = stale
	a.current[group] = rel
	for c := range a.conns {
		if w := c.watches[group]; w != nil {
			c.send(map[string]any{"event": "status", "watch": w.id, "group": group, "stale": stale})
		}
	}
}

// seen returns the requests received so far with op (all when op is "").
func (a *fakeAgent) seen(op string) []fakeRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []fakeRequest
	for _, r := range a.requests {
		if op == "" || r.Op == op {
			out = append(out, r)
		}
	}
	return out
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
