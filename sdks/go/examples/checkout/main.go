// Command checkout is a sample application on the Konorkestra Go SDK, the
// twin of examples/apps/checkout_app.py. It prints its config when it starts
// and on every new release, one line per event:
//
//	start   release=checkout-3 sequence=3 source=agent config={...}
//	applied release=checkout-4 sequence=4 config={...}
//	failed  release=checkout-5 error="BadReload: failBadReload is set" keeping=checkout-4
//
// Demo triggers, in any ConfigSet's data: "failBadReload": true makes the
// reload fail (the SDK acks the release "failed" and the app keeps its
// config); "simulatedErrorRate": 0.3 is reported as error_rate after a reload, and
// "simulatedLatencyP99Ms" (default 120) as latency_p99_ms, for rollout guards.
//
// Usage:
//
//	go run ./examples/checkout [-socket PATH] [-group checkout] [-name checkout-app]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/konorkestra/konorkestra/sdks/go"
)

var errBadReload = errors.New("BadReload: failBadReload is set")

func main() {
	socket := flag.String("socket", "", "agent socket (default: KONORKESTRA_SOCKET or the standard path)")
	group := flag.String("group", "checkout", "group to follow")
	name := flag.String("name", "checkout-app", "client name the agent records")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *socket, *group, *name); err != nil {
		fmt.Fprintf(os.Stderr, "error   %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, socket, group, name string) error {
	opts := []konorkestra.Option{konorkestra.WithName(name)}
	if socket != "" {
		opts = append(opts, konorkestra.WithSocket(socket))
	}
	client, err := konorkestra.Connect(ctx, opts...)
	if err != nil {
		return err
	}
	defer client.Close()

	current, err := client.GetConfig(ctx, group) // no release anywhere: give up
	if err != nil {
		return err
	}
	fmt.Printf("start   release=%s sequence=%d source=%s config=%s\n", current.Release, current.Sequence, current.Source, compact(current))
	// Since(current): a release landing between the read above and this
	// registration is delivered (oldCfg = current), not missed. Calls never
	// overlap, and the first one starts after this line.
	err = client.OnChange(ctx, group, func(cfg, _ konorkestra.Config) error {
		if bad, _ := setting(cfg, "failBadReload").(bool); bad {
			fmt.Printf("failed  release=%s error=%q keeping=%s\n", cfg.Release, errBadReload.Error(), current.Release)
			return errBadReload // acked "failed"; this app keeps its config
		}
		fmt.Printf("applied release=%s sequence=%d config=%s\n", cfg.Release, cfg.Sequence, compact(cfg))
		rate, _ := setting(cfg, "simulatedErrorRate").(float64)
		if err := client.Report(ctx, group, "error_rate", rate); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "report  %v\n", err)
		}
		latency, ok := setting(cfg, "simulatedLatencyP99Ms").(float64)
		if !ok {
			latency = 120
		}
		if err := client.Report(ctx, group, "latency_p99_ms", latency); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "report  %v\n", err)
		}
		current = cfg
		return nil
	}, konorkestra.Since(current))
	if err != nil {
		return err
	}
	<-ctx.Done() // until SIGINT or SIGTERM
	return nil
}

// setting returns key at the top level of the first ConfigSet that has it.
func setting(cfg konorkestra.Config, key string) any {
	for _, name := range cfg.Names() {
		var data map[string]any
		if cfg.Decode(name, &data) == nil {
			if v, ok := data[key]; ok {
				return v
			}
		}
	}
	return nil
}

// compact is the release's data as one line of JSON, keys sorted.
func compact(cfg konorkestra.Config) string {
	all := map[string]any{}
	for _, name := range cfg.Names() {
		var v any
		cfg.Decode(name, &v)
		all[name] = v
	}
	text, _ := json.Marshal(all)
	return string(text)
}
