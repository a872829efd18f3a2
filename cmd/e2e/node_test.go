//go:build !e2edev

package e2e

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/strata-io/strata/cmd/node"
)

// startNode starts an in-process node through cmd/node, the same wiring
// `strata serve` uses.
func startNode(t *testing.T, bc brokerConfig) string {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.FlushInterval = 10 * time.Millisecond
	cfg.AutoCreateTopics = true
	cfg.DefaultPartitions = bc.Partitions

	logs := &tailBuffer{max: 256 << 10}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := node.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("start node: %v\nnode log:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
		if t.Failed() {
			t.Logf("node log (tail):\n%s", logs.String())
		}
	})
	return n.KafkaAddr()
}
