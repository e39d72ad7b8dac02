// Command getbench measures reading a group's config two ways and prints
// the numbers (one line each, or JSON with -json):
//
//   - "socket": one get request and its answer on the agent's Unix socket,
//     decoded as the SDK decodes it: latency p50/p99 over -n requests;
//   - "snapshot": Client.GetConfig after the first call, served from the
//     in-process snapshot, and the same plus one typed read (cfg.Int).
//
// Usage:
//
//	go run ./cmd/getbench -socket /run/konorkestra/agent.sock -group checkout [-n 20000] [-json]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"time"

	"github.com/konorkestra/konorkestra/sdks/go"
)

type result struct {
	Socket struct {
		N     int     `json:"n"`
		P50us float64 `json:"p50_us"`
		P99us float64 `json:"p99_us"`
	} `json:"socket_get"`
	Snapshot struct {
		N       int     `json:"n"`
		NsPerOp float64 `json:"ns_per_op"`
		IntNsOp float64 `json:"with_int_ns_per_op"`
	} `json:"snapshot_get"`
}

func main() {
	socket := flag.String("socket", os.Getenv("KONORKESTRA_SOCKET"), "agent socket path")
	group := flag.String("group", "checkout", "group to read")
	n := flag.Int("n", 20000, "socket requests to time")
	m := flag.Int("m", 5_000_000, "snapshot reads to time")
	asJSON := flag.Bool("json", false, "print one JSON object")
	flag.Parse()
	if *socket == "" {
		fmt.Fprintln(os.Stderr, "getbench: -socket is required")
		os.Exit(2)
	}
	var r result
	if err := socketGets(*socket, *group, *n, &r); err != nil {
		fmt.Fprintln(os.Stderr, "getbench:", err)
		os.Exit(1)
	}
	if err := snapshotGets(*socket, *group, *m, &r); err != nil {
		fmt.Fprintln(os.Stderr, "getbench:", err)
		os.Exit(1)
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(r)
		return
	}
	fmt.Printf("socket get    n=%d  p50=%.1fµs  p99=%.1fµs\n", r.Socket.N, r.Socket.P50us, r.Socket.P99us)
	fmt.Printf("snapshot get  n=%d  %.1f ns/op  (with cfg.Int: %.1f ns/op)\n", r.Snapshot.N, r.Snapshot.NsPerOp, r.Snapshot.IntNsOp)
}

func socketGets(path, group string, n int, r *result) error {
	nc, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	defer nc.Close()
	rd := bufio.NewReaderSize(nc, 64*1024)
	lat := make([]time.Duration, 0, n)
	for i := -n / 10; i < n; i++ { // the first tenth warms up
		req, _ := json.Marshal(map[string]any{"id": i, "op": "get", "group": group})
		start := time.Now()
		if _, err := nc.Write(append(req, '\n')); err != nil {
			return err
		}
		line, err := rd.ReadBytes('\n')
		if err != nil {
			return err
		}
		var resp struct {
			OK     bool                       `json:"ok"`
			Error  json.RawMessage            `json:"error"`
			Config map[string]json.RawMessage `json:"config"`
		}
		if err := json.Unmarshal(line, &resp); err != nil || !resp.OK {
			return fmt.Errorf("get %s: %s (%v)", group, resp.Error, err)
		}
		if i >= 0 {
			lat = append(lat, time.Since(start))
		}
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	r.Socket.N = n
	r.Socket.P50us = float64(lat[n/2]) / 1e3
	r.Socket.P99us = float64(lat[n*99/100]) / 1e3
	return nil
}

func snapshotGets(path, group string, m int, r *result) error {
	ctx := context.Background()
	client, err := konorkestra.Connect(ctx, konorkestra.WithSocket(path), konorkestra.WithName("getbench"))
	if err != nil {
		return err
	}
	defer client.Close()
	cfg, err := client.GetConfig(ctx, group)
	if err != nil {
		return err
	}
	name, key := intSetting(cfg)
	start := time.Now()
	for i := 0; i < m; i++ {
		if _, err := client.GetConfig(ctx, group); err != nil {
			return err
		}
	}
	r.Snapshot.N = m
	r.Snapshot.NsPerOp = float64(time.Since(start)) / float64(m)
	start = time.Now()
	for i := 0; i < m; i++ {
		c, _ := client.GetConfig(ctx, group)
		c.Int(name, key)
	}
	r.Snapshot.IntNsOp = float64(time.Since(start)) / float64(m)
	return nil
}

// intSetting finds a top-level integer to time cfg.Int with.
func intSetting(cfg konorkestra.Config) (name, key string) {
	for _, name := range cfg.Names() {
		var data map[string]json.RawMessage
		cfg.Decode(name, &data)
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, err := cfg.Int(name, k); err == nil {
				return name, k
			}
		}
	}
	return "", ""
}
