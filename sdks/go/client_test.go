package konorkestra

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func connect(t *testing.T, a *testAgent, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{WithSocket(a.path), WithDataDir(t.TempDir()), WithLogger(nil),
		withBackoff(5*time.Millisecond, 50*time.Millisecond)}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Connect(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// calls records callback invocations as "new<-old" sequences and whether two overlapped.
type calls struct {
	mu       sync.Mutex
	got      []string
	inflight atomic.Int32
	overlap  atomic.Bool
}

func (r *calls) record(n, o Config) {
	if r.inflight.Add(1) > 1 {
		r.overlap.Store(true)
	}
	time.Sleep(time.Millisecond) // widen the window for overlap
	r.mu.Lock()
	r.got = append(r.got, fmt.Sprintf("%d<-%d", n.Sequence, o.Sequence))
	r.mu.Unlock()
	r.inflight.Add(-1)
}

func (r *calls) list() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.got, " ")
}

func acks(a *testAgent) string {
	var out []string
	for _, r := range a.seen("ack") {
		s := r.Release + ":" + r.Status
		if r.Error != "" {
			s += "(" + r.Error + ")"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// distinctAcks is acks without repeats: an ack whose answer a disconnect
// lost is sent again, and the agent records it idempotently.
func distinctAcks(a *testAgent) string {
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Fields(acks(a)) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}

func TestGetConfigServesSnapshotKeptCurrentByWatch(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 3, map[string]any{"name": "web", "ratio": 0.5, "on": true})
	c := connect(t, a)
	ctx := context.Background()

	cfg, err := c.GetConfig(ctx, "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Release != "checkout-3" || cfg.Sequence != 3 || cfg.Source != SourceAgent || cfg.Stale {
		t.Fatalf("got %+v", cfg)
	}
	if n, _ := cfg.Int("api", "timeoutMs"); n != 300 {
		t.Fatalf("timeoutMs = %d", n)
	}
	for i := 0; i < 100; i++ {
		if _, err := c.GetConfig(ctx, "checkout"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(a.seen("get")); n != 1 {
		t.Fatalf("%d get requests for 101 reads, want 1", n)
	}
	w := a.seen("watch")
	if len(w) != 1 || w[0].After != 0 {
		t.Fatalf("watch requests %+v, want one after 0", w)
	}

	a.publish("checkout", 4, nil)
	eventually(t, "release 4 in the snapshot", func() bool {
		cfg, _ := c.GetConfig(ctx, "checkout")
		return cfg.Sequence == 4
	})
	a.setStale("checkout", true)
	eventually(t, "stale flag", func() bool {
		cfg, _ := c.GetConfig(ctx, "checkout")
		return cfg.Stale
	})
	if n := len(a.seen("get")); n != 1 {
		t.Fatalf("%d get requests, want 1", n)
	}
	// Every live release is acked once, callbacks or not.
	eventually(t, "acks", func() bool { return acks(a) == "checkout-3:applied checkout-4:applied" })
}

func TestOnChangeRunsInOrderOneAtATimeAndAcks(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 3, nil)
	c := connect(t, a)
	ctx := context.Background()
	if _, err := c.GetConfig(ctx, "checkout"); err != nil {
		t.Fatal(err)
	}
	var r1, r2 calls
	if err := c.OnChange(ctx, "checkout", func(n, o Config) error { r1.record(n, o); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.OnChange(ctx, "checkout", func(n, o Config) error { r2.record(n, o); return nil }); err != nil {
		t.Fatal(err)
	}
	for seq := int64(4); seq <= 8; seq++ {
		a.publish("checkout", seq, nil)
	}
	want := "4<-3 5<-4 6<-5 7<-6 8<-7"
	eventually(t, "five callbacks each", func() bool { return r1.list() == want && r2.list() == want })
	if r1.overlap.Load() || r2.overlap.Load() {
		t.Fatal("a callback ran concurrently with itself")
	}
	eventually(t, "acks", func() bool {
		return acks(a) == "checkout-3:applied checkout-4:applied checkout-5:applied checkout-6:applied checkout-7:applied checkout-8:applied"
	})
}

func TestCallbacksOfOneGroupNeverOverlap(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 1, nil)
	c := connect(t, a)
	ctx := context.Background()
	var shared calls
	for i := 0; i < 3; i++ {
		if err := c.OnChange(ctx, "checkout", func(n, o Config) error { shared.record(n, o); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for seq := int64(2); seq <= 4; seq++ {
		a.publish("checkout", seq, nil)
	}
	eventually(t, "nine callbacks", func() bool { return len(strings.Fields(shared.list())) == 9 })
	if shared.overlap.Load() {
		t.Fatal("callbacks of one group overlapped")
	}
	eventually(t, "one ack per release", func() bool {
		return acks(a) == "checkout-1:applied checkout-2:applied checkout-3:applied checkout-4:applied"
	})
}

func TestFailedCallbackAcksFailedAndKeepsOldConfig(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 3, nil)
	c := connect(t, a)
	ctx := context.Background()
	if _, err := c.GetConfig(ctx, "checkout"); err != nil {
		t.Fatal(err)
	}
	var r calls
	err := c.OnChange(ctx, "checkout", func(n, o Config) error {
		r.record(n, o)
		switch n.Sequence {
		case 4:
			return errors.New("timeoutMs must be > 0")
		case 5:
			panic("boom")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for seq := int64(4); seq <= 6; seq++ {
		a.publish("checkout", seq, nil)
	}
	// 6's old config is 3: the callback never accepted 4 or 5.
	eventually(t, "three callbacks", func() bool { return r.list() == "4<-3 5<-3 6<-3" })
	eventually(t, "three acks", func() bool {
		return acks(a) == "checkout-3:applied checkout-4:failed(timeoutMs must be > 0) checkout-5:failed(panic: boom) checkout-6:applied"
	})
	// The client's snapshot is the newest release regardless.
	if cfg, _ := c.GetConfig(ctx, "checkout"); cfg.Sequence != 6 {
		t.Fatalf("snapshot at %d", cfg.Sequence)
	}
}

func TestWatchStartsWithTheCurrentRelease(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 3, nil)
	c := connect(t, a)
	var r calls
	if err := c.Watch(context.Background(), "checkout", func(n Config) error { r.record(n, Config{}); return nil }); err != nil {
		t.Fatal(err)
	}
	a.publish("checkout", 4, nil)
	eventually(t, "two calls", func() bool { return r.list() == "3<-0 4<-0" })
	eventually(t, "acks", func() bool { return acks(a) == "checkout-3:applied checkout-4:applied" })
}

func TestLateWatchIsNotAckedAgain(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 3, nil)
	c := connect(t, a)
	ctx := context.Background()
	if _, err := c.GetConfig(ctx, "checkout"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ack of 3", func() bool { return acks(a) == "checkout-3:applied" })
	var r calls
	err := c.Watch(ctx, "checkout", func(n Config) error {
		r.record(n, Config{})
		if n.Sequence == 3 {
			return errors.New("first call fails")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "first call", func() bool { return r.list() == "3<-0" })
	a.publish("checkout", 4, nil)
	eventually(t, "second call", func() bool { return r.list() == "3<-0 4<-0" })
	eventually(t, "ack of 4", func() bool { return acks(a) == "checkout-3:applied checkout-4:applied" })
}

func TestWatchBeforeFirstRelease(t *testing.T) {
	a := newTestAgent(t).start()
	c := connect(t, a)
	var r calls
	if err := c.OnChange(context.Background(), "inventory", func(n, o Config) error { r.record(n, o); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetConfig(context.Background(), "inventory"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	a.publish("inventory", 1, nil)
	eventually(t, "first release", func() bool { return r.list() == "1<-0" })
}

func TestReconnectResumesWithoutMissOrDuplicate(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 3, nil)
	c := connect(t, a)
	ctx := context.Background()
	if _, err := c.GetConfig(ctx, "checkout"); err != nil {
		t.Fatal(err)
	}
	var r calls
	if err := c.OnChange(ctx, "checkout", func(n, o Config) error { r.record(n, o); return nil }); err != nil {
		t.Fatal(err)
	}
	a.publish("checkout", 4, nil)
	eventually(t, "release 4", func() bool { return r.list() == "4<-3" })

	a.stop()
	a.publish("checkout", 5, nil) // committed while the client is disconnected
	a.start()
	eventually(t, "release 5 after reconnect", func() bool { return r.list() == "4<-3 5<-4" })
	a.publish("checkout", 6, nil)
	eventually(t, "release 6", func() bool { return r.list() == "4<-3 5<-4 6<-5" })

	var afters []int64
	for _, w := range a.seen("watch") {
		afters = append(afters, w.After)
	}
	if fmt.Sprint(afters) != "[0 4]" { // resumed after the last release processed
		t.Fatalf("watch after values %v, want [0 4]", afters)
	}
	eventually(t, "acks", func() bool {
		return distinctAcks(a) == "checkout-3:applied checkout-4:applied checkout-5:applied checkout-6:applied"
	}, func() string { return acks(a) })
	// A sentinel instead of a pause: calls run in order, so a duplicate of 5 or
	// 6 would show before 7.
	a.publish("checkout", 7, nil)
	eventually(t, "release 7", func() bool { return strings.Contains(r.list(), "7<-") }, r.list)
	if got := r.list(); got != "4<-3 5<-4 6<-5 7<-6" {
		t.Fatalf("calls %q", got)
	}
}

func TestAckQueuedWhileDisconnected(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 1, nil)
	c := connect(t, a)
	ctx := context.Background()
	if _, err := c.GetConfig(ctx, "checkout"); err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	if err := c.OnChange(ctx, "checkout", func(n, o Config) error {
		close(entered)
		<-release
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a.publish("checkout", 2, nil)
	<-entered
	a.stop()
	eventually(t, "disconnect noticed", func() bool { _, err := c.live(); return err != nil })
	close(release) // the ack finds no connection
	a.start()
	eventually(t, "queued ack sent", func() bool { return distinctAcks(a) == "checkout-1:applied checkout-2:applied" },
		func() string { return acks(a) })
}

func TestDiskFallbackThenLive(t *testing.T) {
	a := newTestAgent(t) // not started: the agent is down
	data := t.TempDir()
	writeRelease(t, data, "checkout", 3)
	c := connect(t, a, WithDataDir(data))
	ctx := context.Background()

	cfg, err := c.GetConfig(ctx, "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source != SourceDisk || cfg.Release != "checkout-3" {
		t.Fatalf("got %+v", cfg)
	}
	if v, _ := cfg.Int("api", "timeoutMs"); v != 300 {
		t.Fatalf("timeoutMs = %d", v)
	}
	var r calls
	if err := c.Watch(ctx, "checkout", func(n Config) error { r.record(n, Config{}); return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "initial call from disk", func() bool { return r.list() == "3<-0" })
	if err := c.Report(ctx, "checkout", "error_rate", 0.1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Report while down: %v", err)
	}

	a.publish("checkout", 3, nil)
	a.start()
	eventually(t, "same release, now live", func() bool {
		cfg, _ := c.GetConfig(ctx, "checkout")
		return cfg.Source == SourceAgent && cfg.Sequence == 3
	})
	a.publish("checkout", 4, nil)
	eventually(t, "release 4", func() bool { return r.list() == "3<-0 4<-0" })
	// Release 3 was read from disk, then relabelled: never acked.
	eventually(t, "ack of 4", func() bool { return acks(a) == "checkout-4:applied" })
}

func TestUnavailableAndNotFound(t *testing.T) {
	a := newTestAgent(t)
	c := connect(t, a)
	ctx := context.Background()
	if _, err := c.GetConfig(ctx, "checkout"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no agent, no disk: %v", err)
	}
	a.start()
	eventually(t, "connected", func() bool { _, err := c.live(); return err == nil })
	_, err := c.GetConfig(ctx, "payments")
	var perr *ProtocolError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &perr) || perr.Code != "not_found" {
		t.Fatalf("unknown group: %v", err)
	}
	if _, err := c.GetConfig(ctx, "payments"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second read: %v", err)
	}
}

func TestContextCancellation(t *testing.T) {
	a := newTestAgent(t).start()
	a.mute(true) // accepts, never answers

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Connect(ctx, WithSocket(a.path), WithLogger(nil)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect to a mute agent: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("Connect ignored its deadline")
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if _, err := Connect(done, WithSocket(a.path)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Connect with a cancelled context: %v", err)
	}

	a.mute(false)
	a.publish("checkout", 1, nil)
	c := connect(t, a)
	a.mute(true)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := c.GetConfig(ctx2, "checkout"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetConfig from a mute agent: %v", err)
	}
	if err := c.Report(done, "checkout", "error_rate", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Report with a cancelled context: %v", err)
	}
	if err := c.Watch(done, "checkout", func(Config) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch with a cancelled context: %v", err)
	}
}

func TestCancelledWatchStopsAndOthersContinue(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 1, nil)
	c := connect(t, a)
	wctx, cancel := context.WithCancel(context.Background())
	var stopped, kept calls
	if err := c.OnChange(wctx, "checkout", func(n, o Config) error { stopped.record(n, o); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.OnChange(context.Background(), "checkout", func(n, o Config) error { kept.record(n, o); return nil }); err != nil {
		t.Fatal(err)
	}
	a.publish("checkout", 2, nil)
	eventually(t, "both called", func() bool { return stopped.list() == "2<-1" && kept.list() == "2<-1" })
	cancel()
	a.publish("checkout", 3, nil)
	eventually(t, "kept called", func() bool { return kept.list() == "2<-1 3<-2" })
	if got := stopped.list(); got != "2<-1" {
		t.Fatalf("cancelled watcher called: %q", got)
	}
}

func TestReport(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 1, nil) // a report names a group the agent serves
	c := connect(t, a)
	ctx := context.Background()
	if err := c.Report(ctx, "checkout", "error_rate", 0.002); err != nil {
		t.Fatal(err)
	}
	r := a.seen("report")
	if len(r) != 1 || r[0].Group != "checkout" || r[0].Metric != "error_rate" || r[0].Value != 0.002 {
		t.Fatalf("reports %+v", r)
	}
	if err := c.Report(ctx, "checkout", "error_rate", nan()); err == nil {
		t.Fatal("NaN accepted")
	}
	if h := a.seen("hello"); len(h) != 1 || h[0].Protocol != 1 {
		t.Fatalf("hello %+v", h)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 1, nil)
	c := connect(t, a)
	ctx := context.Background()
	if err := c.Watch(ctx, "checkout", func(Config) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := c.GetConfig(ctx, "checkout"); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetConfig after Close: %v", err)
	}
	if err := c.Report(ctx, "checkout", "x", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Report after Close: %v", err)
	}
	if err := c.OnChange(ctx, "checkout", func(n, o Config) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("OnChange after Close: %v", err)
	}
	eventually(t, "agent sees the disconnect", func() bool { return a.connections() == 0 })
}

func TestConcurrentUse(t *testing.T) {
	a := newTestAgent(t).start()
	a.publish("checkout", 1, nil)
	a.publish("payments", 1, nil)
	c := connect(t, a)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			group := []string{"checkout", "payments"}[i%2]
			for j := 0; j < 200; j++ {
				cfg, err := c.GetConfig(ctx, group)
				if err != nil || cfg.Group != group {
					t.Errorf("GetConfig(%s) = %+v, %v", group, cfg, err)
					return
				}
			}
		}()
	}
	for seq := int64(2); seq <= 20; seq++ {
		a.publish("checkout", seq, nil)
	}
	wg.Wait()
	if n := len(a.seen("watch")); n != 2 {
		t.Fatalf("%d watches for two groups", n)
	}
}

func writeRelease(t *testing.T, data, group string, seq int64) {
	t.Helper()
	dir := filepath.Join(data, "current", group)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`{"group": %q, "release": "%s-%d", "sequence": %d, "digest": "sha256:%064d",
		"committed_at": "2026-11-26T23:59:00Z", "config": {"api": {"timeoutMs": %d}}}`, group, group, seq, seq, seq, seq*100)
	if err := os.WriteFile(filepath.Join(dir, "release.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// connectAtRelease3 is a client that has read release 3 of "checkout" (returned).
func connectAtRelease3(t *testing.T) (*testAgent, *Client, Config) {
	t.Helper()
	a := newTestAgent(t).start()
	a.publish("checkout", 3, nil)
	c := connect(t, a)
	cfg, err := c.GetConfig(context.Background(), "checkout")
	if err != nil {
		t.Fatal(err)
	}
	return a, c, cfg
}

func TestOnChangeSinceDeliversAReleaseMissedBeforeRegistration(t *testing.T) {
	a, c, cfg := connectAtRelease3(t)
	ctx := context.Background()
	a.publish("checkout", 4, nil) // delivered and acked before anyone listens
	eventually(t, "ack of 4", func() bool { return acks(a) == "checkout-3:applied checkout-4:applied" })
	var r, picky calls
	if err := c.OnChange(ctx, "checkout", func(n, o Config) error { r.record(n, o); return nil }, Since(cfg)); err != nil {
		t.Fatal(err)
	}
	err := c.OnChange(ctx, "checkout", func(n, o Config) error {
		picky.record(n, o)
		if n.Sequence == 4 {
			return errors.New("late failure")
		}
		return nil
	}, Since(cfg))
	if err != nil {
		t.Fatal(err)
	}
	a.publish("checkout", 5, nil) // right after: must come after 4, with oldCfg = 4
	eventually(t, "4 then 5", func() bool { return r.list() == "4<-3 5<-4" }, r.list)
	eventually(t, "picky keeps cfg", func() bool { return picky.list() == "4<-3 5<-3" }, picky.list)
	// One ack per release: the late calls for 4 add none (picky's failure is only logged).
	eventually(t, "ack of 5", func() bool { return len(a.seen("ack")) == 3 })
	if got := acks(a); got != "checkout-3:applied checkout-4:applied checkout-5:applied" {
		t.Fatalf("acks %s", got)
	}
}

func TestOnChangeSinceJoinsTheAckOfAQueuedRelease(t *testing.T) {
	a, c, cfg := connectAtRelease3(t)
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	err := c.OnChange(ctx, "checkout", func(n, o Config) error {
		if n.Sequence == 4 {
			close(entered)
			<-release
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a.publish("checkout", 4, nil)
	<-entered // the group's goroutine is busy with 4; 5 will wait in the queue
	a.publish("checkout", 5, nil)
	eventually(t, "5 in the snapshot", func() bool { s, _ := c.GetConfig(ctx, "checkout"); return s.Sequence == 5 })
	var picky calls
	err = c.OnChange(ctx, "checkout", func(n, o Config) error {
		picky.record(n, o)
		if n.Sequence == 5 {
			return errors.New("bad 5")
		}
		return nil
	}, Since(cfg))
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	eventually(t, "ack of 5", func() bool { return len(a.seen("ack")) == 3 }, func() string { return acks(a) })
	a.publish("checkout", 6, nil)
	eventually(t, "ack of 6", func() bool { return len(a.seen("ack")) == 4 })
	if got := acks(a); got != "checkout-3:applied checkout-4:applied checkout-5:failed(bad 5) checkout-6:applied" {
		t.Fatalf("acks %s", got)
	}
	if got := picky.list(); got != "5<-3 6<-3" {
		t.Fatalf("calls %s", got)
	}
}

func TestOnChangeSinceTheCurrentReleaseWaitsForTheNext(t *testing.T) {
	a, c, cfg := connectAtRelease3(t)
	ctx := context.Background()
	var r calls
	if err := c.OnChange(ctx, "checkout", func(n, o Config) error { r.record(n, o); return nil }, Since(cfg)); err != nil {
		t.Fatal(err)
	}
	a.publish("checkout", 4, nil) // the first call, if any, must be this one
	eventually(t, "ack of 4", func() bool { return acks(a) == "checkout-3:applied checkout-4:applied" })
	if got := r.list(); got != "4<-3" {
		t.Fatalf("calls %s", got)
	}
	if err := c.OnChange(ctx, "inventory", func(n, o Config) error { return nil }, Since(cfg)); err == nil {
		t.Fatal("Since with another group's config: no error")
	}
}
