package konorkestra

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Watch calls fn with the group's current release (if there is one, possibly
// read from disk) and then with every newer release, until ctx ends or the
// client is closed: one function both applies the config at start and
// reloads it. It returns once fn is registered; fn runs on the group's
// callback goroutine, with OnChange's ordering and ack rules.
func (c *Client) Watch(ctx context.Context, group string, fn func(Config) error) error {
	if fn == nil {
		return errors.New("konorkestra: Watch needs a callback")
	}
	return c.watch(ctx, group, true, nil, func(n, _ Config) error { return fn(n) })
}

// OnChange calls fn(newCfg, oldCfg) for every release the agent sends that
// is newer than the group's release when OnChange is called, until ctx ends
// or the client is closed. oldCfg is the last release fn accepted (the zero
// Config when the group had none).
//
// Callbacks of one group run one at a time on one goroutine, in sequence
// order, each release once per callback. Each release received from the
// agent is acked once, after its callbacks ran: "applied" when all returned
// nil (or there were none), else "failed" with the first error's text (a
// panic counts as an error, "panic: ..."); a callback that failed keeps its
// oldCfg. Releases read from disk are never acked, and only a Watch's first
// call can carry one. A Watch's first call joins its release's ack only if
// that ack was not sent yet; otherwise its outcome is only logged.
//
// With Since(cfg), "newer" is relative to cfg instead of the group's release
// at registration; see Since.
func (c *Client) OnChange(ctx context.Context, group string, fn func(newCfg, oldCfg Config) error, opts ...ChangeOption) error {
	if fn == nil {
		return errors.New("konorkestra: OnChange needs a callback")
	}
	var set changeSettings
	for _, o := range opts {
		o(&set)
	}
	if set.since != nil && set.since.Group != group {
		return fmt.Errorf("konorkestra: Since has a config of group %q, not %q", set.since.Group, group)
	}
	return c.watch(ctx, group, false, set.since, fn)
}

// A ChangeOption configures OnChange.
type ChangeOption func(*changeSettings)

type changeSettings struct {
	since *Config
}

// Since makes OnChange deliver every release newer than cfg, a config of the
// same group the application already holds (from GetConfig): a release that
// arrived between that read and the registration is delivered first, with
// oldCfg = cfg, then later ones in order. When cfg is the group's current
// release, OnChange behaves as without it. The missed release's ack follows
// Watch's first-call rule: the callback joins it if it is not sent yet,
// otherwise its outcome is only logged (never a second, contradicting ack).
func Since(cfg Config) ChangeOption {
	return func(s *changeSettings) { s.since = &cfg }
}

type watcher struct {
	ctx     context.Context
	fn      func(newCfg, oldCfg Config) error
	initial *Config // Watch: the release current at registration, not yet delivered
	from    int64   // deliver queued releases above this sequence
	cur     Config  // last release fn accepted; dispatcher only
}

func (c *Client) watch(ctx context.Context, name string, initial bool, since *Config, fn func(n, o Config) error) error {
	g, err := c.group(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if g.snap.Load() == nil {
		lctx, cancel := context.WithTimeout(ctx, c.set.callTimeout)
		_, err := c.load(lctx, g) // not found or unavailable: wait for the first release
		cancel()
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return errors.Join(ctx.Err(), err)
		}
	}
	w := &watcher{ctx: ctx, fn: fn}
	g.mu.Lock()
	s := g.snap.Load()
	queued := s != nil && len(g.queue) > 0 && g.queue[len(g.queue)-1].Sequence == s.Sequence
	switch {
	case since != nil && (s == nil || s.Sequence != since.Sequence):
		w.cur, w.from = *since, since.Sequence // queued releases above since: join them and their acks
		if s != nil && s.Sequence > since.Sequence && !queued {
			w.initial, w.from = s, s.Sequence // delivered alone; s was acked already (or is from disk)
		}
	case s != nil:
		w.from = s.Sequence // queued releases up to the snapshot predate this watcher
		switch {
		case !initial:
			w.cur = *s
		case queued:
			w.from = s.Sequence - 1 // s is still queued: join its delivery and ack
		default:
			w.initial = s // delivered alone; s was acked already (or is from disk)
		}
	}
	g.watchers = append(g.watchers, w)
	g.mu.Unlock()
	g.signal()
	context.AfterFunc(ctx, func() { g.remove(w) })
	return nil
}

// dispatch delivers g's releases to its watchers, one at a time, and acks
// each release once for all the callbacks it ran.
func (c *Client) dispatch(g *group) {
	defer c.wg.Done()
	for c.ctx.Err() == nil {
		cfg, batch, queued, ok := g.next()
		if !ok {
			select {
			case <-g.wake:
			case <-c.ctx.Done():
			}
			continue
		}
		var failures []string
		for _, w := range batch {
			if w.ctx.Err() != nil {
				continue
			}
			if err := w.call(cfg); err != nil {
				c.set.log.Error("konorkestra: callback rejected release", "group", g.name, "release", cfg.Release, "err", err)
				failures = append(failures, err.Error())
			}
		}
		if queued {
			c.ack(cfg, failures)
		}
	}
}

// next returns the next release to deliver and who gets it: first a Watch's
// initial release (not to be acked), then the oldest queued one (to be acked).
func (g *group) next() (cfg Config, batch []*watcher, queued, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range g.watchers {
		if w.initial != nil {
			cfg := *w.initial
			w.initial = nil
			return cfg, []*watcher{w}, false, true
		}
	}
	if len(g.queue) == 0 {
		return Config{}, nil, false, false
	}
	cfg = g.queue[0]
	g.queue = g.queue[1:]
	for _, w := range g.watchers {
		if w.from < cfg.Sequence {
			batch = append(batch, w)
		}
	}
	return cfg, batch, true, true
}

func (w *watcher) call(cfg Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	if err = w.fn(cfg, w.cur); err == nil {
		w.cur = cfg
	}
	return err
}

// ack tells the agent whether the callbacks took cfg: "failed" with the
// first error if any failed. An ack that finds no connection is queued
// (at most maxUnsent, oldest dropped) and sent after reconnecting.
func (c *Client) ack(cfg Config, failures []string) {
	if cfg.Source != SourceAgent {
		return
	}
	req := map[string]any{"op": "ack", "group": cfg.Group, "release": cfg.Release, "status": "applied"}
	if len(failures) > 0 {
		msg := failures[0]
		if len(msg) > maxAckError {
			msg = strings.ToValidUTF8(msg[:maxAckError], "")
		}
		req["status"], req["error"] = "failed", msg
	}
	if cn, err := c.live(); err == nil {
		c.sendAck(cn, req)
	} else {
		c.queueAck(req)
	}
}

func (c *Client) queueAck(req map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed.Load() {
		c.unsent = append(c.unsent, req)
		if len(c.unsent) > maxUnsent {
			c.unsent = c.unsent[1:]
		}
	}
}

const (
	maxAckError = 1000 // bytes of a failed ack's error text
	maxUnsent   = 256  // acks kept while disconnected
)

// sendAck sends one ack on cn. If the connection fails first, the ack is
// queued again (the agent records acks idempotently) for the next connection.
func (c *Client) sendAck(cn *conn, req map[string]any) {
	ctx, cancel := context.WithTimeout(c.ctx, c.set.callTimeout)
	defer cancel()
	_, err := cn.call(ctx, req)
	var perr *ProtocolError
	switch {
	case err == nil || c.ctx.Err() != nil:
	case errors.As(err, &perr):
		c.set.log.Warn("konorkestra: ack refused", "group", req["group"], "release", req["release"], "err", err)
	default:
		c.queueAck(req)
		if next, err := c.live(); err == nil && next != cn {
			c.flushAcks(next) // the run loop flushed before this one was queued
		}
	}
}

func (g *group) remove(w *watcher) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.watchers {
		if x == w {
			g.watchers = append(g.watchers[:i:i], g.watchers[i+1:]...)
			return
		}
	}
}

// signal wakes the dispatcher; g.mu need not be held.
func (g *group) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}
