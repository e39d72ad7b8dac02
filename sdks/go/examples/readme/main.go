// Command readme is the short example of docs/guide/sdk-go.md, kept here so that
// `go build ./...` proves it compiles (readme_test.go checks they match).
package main

import (
	"context"
	"fmt"
	"log"

	"github.com/konorkestra/konorkestra/sdks/go"
)

func main() {
	ctx := context.Background()
	client, err := konorkestra.Connect(ctx, konorkestra.WithName("checkout-web"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	cfg, err := client.GetConfig(ctx, "checkout") // then served from memory
	if err != nil {
		log.Fatal(err)
	}
	timeout, err := cfg.Int("checkout-api", "timeout_ms")
	fmt.Println(cfg.Release, cfg.Source, timeout, err)
	client.OnChange(ctx, "checkout", func(newCfg, oldCfg konorkestra.Config) error {
		fmt.Println("reload", oldCfg.Release, "->", newCfg.Release)
		return nil // an error or a panic acks the release "failed"
	}, konorkestra.Since(cfg)) // from cfg on: a release landing in between is not missed
	select {} // serve
}
