package konorkestra

// End-to-end test against a real agent with a real push. It needs a running
// agent (another issue's daemon), so it runs only when told where it is:
//
//	KONORKESTRA_E2E_SOCKET=/path/agent.sock    the agent's socket (required)
//	KONORKESTRA_E2E_GROUP=checkout             the group to read (default checkout)
//	KONORKESTRA_E2E_PUSH='konorctl release …'  a shell command that commits a new
//	                                           release of the group (optional)
//	KONORKESTRA_E2E_TIMEOUT=60s                how long to wait for it (default 60s)
//
// Without KONORKESTRA_E2E_SOCKET it is skipped, even with KONORKESTRA_REQUIRE_ALL=1.

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestEndToEndWithRealAgent(t *testing.T) {
	socket := os.Getenv("KONORKESTRA_E2E_SOCKET")
	if socket == "" {
		t.Skip("set KONORKESTRA_E2E_SOCKET (and KONORKESTRA_E2E_PUSH) to run against a real agent")
	}
	group := os.Getenv("KONORKESTRA_E2E_GROUP")
	if group == "" {
		group = "checkout"
	}
	timeout := time.Minute
	if v := os.Getenv("KONORKESTRA_E2E_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("KONORKESTRA_E2E_TIMEOUT: %v", err)
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := Connect(ctx, WithSocket(socket), WithName("go-sdk-e2e"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before, err := c.GetConfig(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if before.Source != SourceAgent || before.Sequence <= 0 || before.Digest == "" {
		t.Fatalf("first read %+v: want a live release", before)
	}
	t.Logf("current: %s (sequence %d, %s)", before.Release, before.Sequence, before.Digest)

	push := os.Getenv("KONORKESTRA_E2E_PUSH")
	if push == "" {
		return
	}
	got := make(chan [2]Config, 1)
	if err := c.OnChange(ctx, group, func(n, o Config) error { got <- [2]Config{n, o}; return nil }); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", push)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("push command: %v\n%s", err, out)
	}
	select {
	case pair := <-got:
		if pair[0].Sequence <= before.Sequence || pair[1].Sequence != before.Sequence {
			t.Fatalf("callback got %s after %s, want a release after %s", pair[0].Release, pair[1].Release, before.Release)
		}
		t.Logf("pushed: %s (sequence %d), acked applied", pair[0].Release, pair[0].Sequence)
	case <-ctx.Done():
		t.Fatalf("no new release of %s within %s", group, timeout)
	}
	if cfg, _ := c.GetConfig(ctx, group); cfg.Sequence <= before.Sequence {
		t.Fatalf("snapshot still at %d", cfg.Sequence)
	}
}
