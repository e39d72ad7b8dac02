package konorkestra

import (
	"context"
	"testing"
)

// go test -bench . -run '^$' : the in-process snapshot read, and with one typed read.
func BenchmarkGetConfigSnapshot(b *testing.B) {
	c, ctx := benchClient(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetConfig(ctx, "checkout"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGetConfigInt(b *testing.B) {
	c, ctx := benchClient(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		cfg, _ := c.GetConfig(ctx, "checkout")
		if _, err := cfg.Int("api", "timeoutMs"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchClient(b *testing.B) (*Client, context.Context) {
	a := newTestAgent(b).start()
	a.publish("checkout", 1, nil)
	ctx := context.Background()
	c, err := Connect(ctx, WithSocket(a.path), WithLogger(nil))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	if _, err := c.GetConfig(ctx, "checkout"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	return c, ctx
}
