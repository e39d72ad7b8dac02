package konorkestra

// Invariants (each has a test in client_test.go):
//
//   - A group's snapshot only moves to a higher sequence; the same sequence
//     may replace it only to relabel disk as live or to refresh Stale.
//   - Every watch is sent with after = the snapshot's sequence, so across
//     reconnects each release reaches the snapshot once and none is skipped.
//   - Only a release that raised the snapshot is queued for callbacks and
//     its ack, and only if it came from the agent: each is acked once.
//   - At most one watch per group per connection (group.on, under group.sub).
//   - The reading goroutine never blocks on callbacks: it takes group.mu only
//     to update a snapshot and append to queues.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Client reads and watches the releases the node's agent serves. It keeps
// one connection to the agent, reconnecting with jittered back-off, and one
// in-process snapshot per group read, kept current by a watch on that
// connection. All methods are safe for concurrent use.
type Client struct {
	set    settings
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the connection loop and the dispatchers
	closed atomic.Bool

	groups sync.Map // name -> *group

	mu     sync.Mutex       // guards cn, unsent, and wg.Add against Close
	cn     *conn            // the live connection, nil while the agent is away
	unsent []map[string]any // acks to send on the next connection, oldest first
}

// group is the client's state for one group name.
type group struct {
	name string
	snap atomic.Pointer[Config] // newest release known; nil before the first
	sub  chan struct{}          // held while subscribing; guards on
	on   *conn                  // the connection whose watch keeps snap current

	mu       sync.Mutex // guards snap writes, watchers, queue
	watchers []*watcher
	queue    []Config      // live releases to deliver and ack, in sequence order
	wake     chan struct{} // cap 1: work for the dispatcher
}

// Connect returns a client of the agent. It dials the agent's socket once; when
// that fails, Connect still succeeds: reads are served from the release files in
// the data directory (Source "disk") and the client keeps dialling in the
// background, switching to live data when the agent answers. Connect fails
// only when ctx ends first.
func Connect(ctx context.Context, opts ...Option) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := &Client{set: newSettings(opts)}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	cn, err := c.dial(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			c.cancel()
			return nil, ctxErr
		}
		c.set.log.Warn("konorkestra: agent unreachable; serving releases from disk until it answers",
			"socket", c.set.socket, "data", c.set.dataDir, "err", err)
	}
	c.cn = cn
	c.wg.Add(1)
	go c.run(cn)
	return c, nil
}

// GetConfig returns the newest release of group. After the first call for a
// group it is answered from the in-process snapshot, without a round trip.
// The first call asks the agent (and keeps a watch on the group), or, while
// the agent is unreachable, reads the release from disk. It fails with an
// error matching ErrNotFound when the agent has no release of group, and
// ErrUnavailable when neither the agent nor the disk has one.
func (c *Client) GetConfig(ctx context.Context, group string) (Config, error) {
	g, err := c.group(group)
	if err != nil {
		return Config{}, err
	}
	if s := g.snap.Load(); s != nil {
		return *s, nil
	}
	return c.load(ctx, g)
}

// Report sends an application health signal (e.g. "error_rate") for group,
// used by rollout guards. It fails with ErrUnavailable while the agent is away.
func (c *Client) Report(ctx context.Context, group, metric string, value float64) error {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return fmt.Errorf("konorkestra: report %s %s: %v is not a finite number", group, metric, value)
	}
	if group == "" || metric == "" {
		return errors.New("konorkestra: report needs a group and a metric name")
	}
	cn, err := c.live()
	if err != nil {
		return err
	}
	_, err = cn.call(ctx, map[string]any{"op": "report", "group": group, "metric": metric, "value": value})
	return err
}

// Close stops watching, closes the connection and waits for the client's
// goroutines, including a callback in progress, so it must not be called
// from a callback. Later calls return ErrClosed; Close itself is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed.Swap(true) {
		c.mu.Unlock()
		return nil
	}
	cn := c.cn
	c.cn = nil
	c.mu.Unlock()
	c.cancel()
	if cn != nil {
		cn.close(ErrClosed)
	}
	c.wg.Wait()
	return nil
}

func (c *Client) group(name string) (*group, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if v, ok := c.groups.Load(name); ok {
		return v.(*group), nil
	}
	if name == "" {
		return nil, errors.New("konorkestra: empty group name")
	}
	c.mu.Lock() // against Close, for wg.Add
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	v, loaded := c.groups.LoadOrStore(name, &group{name: name, sub: make(chan struct{}, 1), wake: make(chan struct{}, 1)})
	if !loaded {
		c.wg.Add(1)
		go c.dispatch(v.(*group))
	}
	return v.(*group), nil
}

// live returns the current connection, or why there is none.
func (c *Client) live() (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if c.cn == nil {
		return nil, fmt.Errorf("%w at %s", ErrUnavailable, c.set.socket)
	}
	return c.cn, nil
}

// load is GetConfig's slow path: subscribe on the live connection, else disk.
func (c *Client) load(ctx context.Context, g *group) (Config, error) {
	if err := ctx.Err(); err != nil {
		return Config{}, err
	}
	cn, err := c.live()
	if errors.Is(err, ErrClosed) {
		return Config{}, err
	}
	if cn != nil {
		err = c.subscribe(ctx, g, cn)
		if s := g.snap.Load(); s != nil {
			return *s, nil
		}
		if err == nil { // subscribed earlier on this connection, still nothing
			err = &ProtocolError{Code: "not_found", Message: fmt.Sprintf("no committed release for group %q", g.name)}
		}
		if errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			return Config{}, err
		}
	}
	cfg, derr := readDisk(c.set.dataDir, g.name)
	if derr != nil {
		if cn == nil {
			return Config{}, fmt.Errorf("%w at %s, and no release on disk: %v", ErrUnavailable, c.set.socket, derr)
		}
		return Config{}, fmt.Errorf("%w, and no release on disk: %v", err, derr)
	}
	c.update(g, cfg)
	return *g.snap.Load(), nil
}

// subscribe makes cn's watch keep g's snapshot current: watch with after =
// the newest sequence held (0: none), so the agent sends each later release
// once, then get, which refreshes the stale flag and relabels a release read
// from disk as live. It returns the get's not_found error.
func (c *Client) subscribe(ctx context.Context, g *group, cn *conn) error {
	select {
	case g.sub <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-g.sub }()
	if g.on == cn {
		return nil
	}
	var after int64
	if s := g.snap.Load(); s != nil {
		after = s.Sequence
	}
	if _, err := cn.call(ctx, map[string]any{"op": "watch", "group": g.name, "after": after}); err != nil {
		return err
	}
	g.on = cn
	m, err := cn.call(ctx, map[string]any{"op": "get", "group": g.name})
	if err != nil {
		return err
	}
	cfg, err := m.config()
	if err != nil {
		return err
	}
	c.update(g, cfg)
	return nil
}

// update makes cfg g's snapshot if it is newer (queueing it for dispatch),
// or if it is the same release now seen live.
func (c *Client) update(g *group, cfg Config) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.snap.Load()
	switch {
	case old == nil || cfg.Sequence > old.Sequence:
		g.snap.Store(&cfg)
		if cfg.Source == SourceAgent { // callbacks and acks: live releases only
			g.queue = append(g.queue, cfg)
			g.signal()
		}
	case cfg.Sequence == old.Sequence && cfg.Source == SourceAgent:
		g.snap.Store(&cfg)
	case cfg.Sequence < old.Sequence:
		c.set.log.Warn("konorkestra: ignoring an older release", "group", g.name,
			"release", cfg.Release, "sequence", cfg.Sequence, "have", old.Sequence)
	}
}

func (c *Client) setStale(g *group, stale bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if old := g.snap.Load(); old != nil && old.Source == SourceAgent && old.Stale != stale {
		cfg := *old
		cfg.Stale = stale
		g.snap.Store(&cfg)
	}
}

// onEvent runs on the connection's reading goroutine; it must not block.
func (c *Client) onEvent(m *message) {
	v, ok := c.groups.Load(m.Group)
	if !ok {
		return
	}
	g := v.(*group)
	switch m.Event {
	case "release":
		cfg, err := m.config()
		if err != nil {
			c.set.log.Error("konorkestra: unreadable release event", "group", m.Group, "err", err)
			return
		}
		c.update(g, cfg)
	case "status":
		c.setStale(g, m.Stale)
	}
}

// dial connects and says hello. An unsupported protocol is logged, not fatal.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	cn, err := dialConn(ctx, c.set.socket, c.onEvent)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, c.set.callTimeout)
	defer cancel()
	hello := map[string]any{"op": "hello", "protocol": 1,
		"client": map[string]any{"name": c.set.name, "lang": "go", "version": Version}}
	if _, err := cn.call(hctx, hello); err != nil {
		var perr *ProtocolError
		if !errors.As(err, &perr) || perr.Code == "forbidden" {
			cn.close(err)
			return nil, err
		}
		c.set.log.Warn("konorkestra: agent refused hello", "err", err)
	}
	return cn, nil
}

// run keeps a connection: on loss it redials with jittered exponential
// back-off and subscribes every known group again.
func (c *Client) run(cn *conn) {
	defer c.wg.Done()
	delay := c.set.minBackoff
	for {
		if cn != nil {
			delay = c.set.minBackoff
			c.resubscribe(cn)
			c.flushAcks(cn)
			select {
			case <-cn.done:
			case <-c.ctx.Done():
				cn.close(ErrClosed)
				return
			}
			c.mu.Lock()
			if c.cn == cn {
				c.cn = nil
			}
			c.mu.Unlock()
			if c.ctx.Err() != nil {
				return
			}
			c.set.log.Warn("konorkestra: lost the agent; reconnecting", "socket", c.set.socket, "err", cn.err)
		}
		if !sleep(c.ctx, delay/2+rand.N(delay/2+1)) {
			return
		}
		delay = min(2*delay, c.set.maxBackoff)
		var err error
		if cn, err = c.dial(c.ctx); err != nil {
			c.set.log.Debug("konorkestra: agent still unreachable", "socket", c.set.socket, "err", err)
			cn = nil
			continue
		}
		c.mu.Lock()
		if c.closed.Load() {
			c.mu.Unlock()
			cn.close(ErrClosed)
			return
		}
		c.cn = cn
		c.mu.Unlock()
		c.set.log.Info("konorkestra: connected to the agent", "socket", c.set.socket)
	}
}

func (c *Client) resubscribe(cn *conn) {
	c.groups.Range(func(_, v any) bool {
		ctx, cancel := context.WithTimeout(c.ctx, c.set.callTimeout)
		err := c.subscribe(ctx, v.(*group), cn)
		cancel()
		if err != nil && !errors.Is(err, ErrNotFound) {
			c.set.log.Warn("konorkestra: cannot watch group", "group", v.(*group).name, "err", err)
		}
		select {
		case <-cn.done:
			return false
		default:
			return true
		}
	})
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// flushAcks sends the acks that found no connection (oldest first).
func (c *Client) flushAcks(cn *conn) {
	c.mu.Lock()
	unsent := c.unsent
	c.unsent = nil
	c.mu.Unlock()
	for _, req := range unsent {
		c.sendAck(cn, req)
	}
}
