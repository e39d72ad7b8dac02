package konorkestra

// One connection to the agent (docs/reference/protocol.md, "Framing"): requests carry
// integer ids and wait for the answer with that id; events go to onEvent, on
// the reading goroutine, in arrival order.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

const maxRequest = 64 * 1024 // bytes per request line, not counting "\n"

// message is any line from the agent: a response or an event.
type message struct {
	ID    json.RawMessage `json:"id"`
	OK    bool            `json:"ok"`
	Error *ProtocolError  `json:"error"`
	Event string          `json:"event"`

	Group    string                     `json:"group"`
	Release  string                     `json:"release"`
	Sequence int64                      `json:"sequence"`
	Digest   string                     `json:"digest"`
	Stale    bool                       `json:"stale"`
	Config   map[string]json.RawMessage `json:"config"`
}

func (m *message) config() (Config, error) {
	return newConfig(m.Group, m.Release, m.Sequence, m.Digest, m.Stale, SourceAgent, m.Config)
}

type conn struct {
	nc      net.Conn
	onEvent func(*message)

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan *message
	err     error // why the connection ended, set once
	done    chan struct{}
}

func dialConn(ctx context.Context, path string, onEvent func(*message)) (*conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	c := &conn{nc: nc, onEvent: onEvent, pending: map[int64]chan *message{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

// call sends req (an op and its fields; the id is added) and returns the
// agent's answer, or a *ProtocolError when it is an error answer.
func (c *conn) call(ctx context.Context, req map[string]any) (*message, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.nextID++
	id := c.nextID
	ch := make(chan *message, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()

	req["id"] = id
	line, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("konorkestra: encoding %v request: %w", req["op"], err)
	}
	if len(line) > maxRequest {
		return nil, fmt.Errorf("konorkestra: %v request is %d bytes, over the agent's %d", req["op"], len(line), maxRequest)
	}
	if err := c.write(ctx, append(line, '\n')); err != nil {
		return nil, err
	}
	select {
	case m := <-ch:
		return c.result(m)
	case <-c.done:
		select {
		case m := <-ch: // answered just before the connection ended
			return c.result(m)
		default:
			return nil, c.err
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *conn) result(m *message) (*message, error) {
	if m.OK {
		return m, nil
	}
	if m.Error == nil {
		return nil, &ProtocolError{Code: "internal", Message: "error answer without an error"}
	}
	return nil, m.Error
}

func (c *conn) write(ctx context.Context, line []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second) // an agent that stops reading is dead
	}
	c.nc.SetWriteDeadline(deadline)
	if _, err := c.nc.Write(line); err != nil {
		err = fmt.Errorf("%w: writing to the agent: %v", ErrUnavailable, err)
		c.close(err)
		return err
	}
	return nil
}

func (c *conn) read() {
	r := bufio.NewReaderSize(c.nc, 64*1024)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			c.close(fmt.Errorf("%w: connection lost: %v", ErrUnavailable, err))
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m := new(message)
		if err := json.Unmarshal(line, m); err != nil {
			c.close(fmt.Errorf("%w: agent sent invalid JSON: %v", ErrUnavailable, err))
			return
		}
		switch {
		case m.Event != "":
			c.onEvent(m)
		case string(m.ID) == "null" || len(m.ID) == 0:
			// An answer to no request: the agent refuses the connection
			// (forbidden) or could not read one of our lines.
			if m.Error != nil && m.Error.Code == "forbidden" {
				c.close(m.Error)
				return
			}
		default:
			id, err := strconv.ParseInt(string(m.ID), 10, 64)
			if err != nil {
				continue // not one of ours
			}
			c.mu.Lock()
			ch := c.pending[id]
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}
}

// close ends the connection with err (the first cause wins).
func (c *conn) close(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	if err == nil {
		err = errors.New("konorkestra: connection closed")
	}
	c.err = err
	c.nc.Close()
	close(c.done)
}
