package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/privicore/privicore"
)

// BenchmarkWriteParallel measures group-committed writes (one command row
// each, fsync'd): run with -cpu to vary the writers.
func BenchmarkWriteParallel(b *testing.B) {
	ctx := context.Background()
	db := open(b, filepath.Join(b.TempDir(), "db.sqlite"))
	defer db.Close()
	var n atomic.Int64
	now := time.Now().UTC()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprint(n.Add(1))
			err := db.Write(ctx, func(q privicore.Queries) error {
				return q.CreateCommand(ctx, &privicore.Command{ID: id, Type: "bench", Payload: []byte(`{}`), Status: privicore.CommandSucceeded, CreatedAt: now, UpdatedAt: now})
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFindToken measures the read behind every authenticated request
// that misses the auth cache.
func BenchmarkFindToken(b *testing.B) {
	ctx := context.Background()
	db := open(b, filepath.Join(b.TempDir(), "db.sqlite"))
	defer db.Close()
	now := time.Now().UTC()
	if err := db.Write(ctx, func(q privicore.Queries) error {
		return q.CreateToken(ctx, &privicore.Token{ID: "t", ProfileID: "p", Kind: privicore.TokenAuth, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := db.FindToken(ctx, "t"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlobHolders measures the read behind every retrieval: which
// devices hold a blob (three of them, among 10 000 blobs).
func BenchmarkBlobHolders(b *testing.B) {
	ctx := context.Background()
	db := open(b, filepath.Join(b.TempDir(), "db.sqlite"))
	defer db.Close()
	const blobs = 10000
	if err := db.Write(ctx, func(q privicore.Queries) error {
		for i := range blobs {
			if err := q.AddDeviceBlob(ctx, fmt.Sprintf("blob%05d", i), 1024, "dev-c", "dev-a", "dev-b"); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		holders, err := db.BlobHolders(ctx, fmt.Sprintf("blob%05d", i%blobs))
		if err != nil || len(holders) != 3 || holders[0] != "dev-a" {
			b.Fatal(holders, err)
		}
	}
}
