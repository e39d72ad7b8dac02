// Package konorkestra is the Go SDK of Konorkestra: live, versioned
// configuration from the Konorkestra agent running on the node, over its
// Unix socket (protocol: docs/reference/protocol.md). It uses the standard library only.
//
// Example:
//
//	client, err := konorkestra.Connect(ctx, konorkestra.WithName("checkout-web"))
//	if err != nil {
//		return err
//	}
//	defer client.Close()
//
//	cfg, err := client.GetConfig(ctx, "checkout") // later calls: no round trip
//	if err != nil {
//		return err
//	}
//	timeout, err := cfg.Int("checkout-api", "timeout_ms")
//	fmt.Println(cfg.Release, cfg.Sequence, cfg.Source, timeout) // checkout-3 3 agent 400
//
//	var api struct {
//		TimeoutMs int `json:"timeout_ms"`
//	}
//	err = cfg.Decode("checkout-api", &api)
//
//	// The current release, then each new one, in order; an error (or a
//	// panic) acks the release "failed". OnChange gives (newCfg, oldCfg).
//	err = client.Watch(ctx, "checkout", func(cfg konorkestra.Config) error {
//		return server.Reload(cfg)
//	})
//
//	err = client.Report(ctx, "checkout", "error_rate", 0.002)
//
// # Semantics
//
// A Client keeps one connection to the agent. The first GetConfig of a group
// asks the agent and starts a watch on that connection; from then on the
// group's newest release is kept in an in-process snapshot, so GetConfig costs
// a map lookup. When the connection drops, the client redials with jittered
// exponential back-off (50 ms doubling to 2 s) and resumes each watch after the
// newest sequence it holds: no release is missed or delivered twice.
//
// When the agent is unreachable, the first read of a group falls back to the
// last committed release in the agent's data directory
// (<data>/current/<group>/release.json, read-only) with Source "disk"; the
// config switches to Source "agent" as soon as the agent answers.
//
// Watch and OnChange callbacks of one group run on one goroutine, one at a
// time, in sequence order. Each release the agent sends is acked once:
// "applied" when every callback returned nil (or there was none), "failed"
// with the first error otherwise; a callback that failed keeps its previous
// config as oldCfg. Watch's first call is the release current at
// registration; OnChange(ctx, group, fn, Since(cfg)) counts from the cfg an
// earlier GetConfig returned, so a release landing in between is delivered
// (with oldCfg = cfg), not missed.
//
// Accessors (String, Int, Float, Bool) take a ConfigSet name and a path of
// object keys or decimal array indexes, and return an error naming the path
// when it is missing or of another type. Errors from the agent are
// *ProtocolError; errors.Is(err, ErrNotFound) and errors.Is(err,
// ErrUnavailable) tell "no such release" from "no agent, no disk copy".
package konorkestra
