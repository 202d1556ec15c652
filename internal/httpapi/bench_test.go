package httpapi_test

import (
	"context"
	"testing"

	"github.com/privicore/privicore/client"
	"github.com/privicore/privicore/internal/enginetest"
)

// benchSession is a profile with a key and one storage device, joined.
func benchSession(b *testing.B) *client.Session {
	e := enginetest.Start(b)
	a := newAPI(b, e)
	u := a.activeUser("bench")
	a.storageDevice(u, "s1")
	s, err := client.NewSession(context.Background(), client.New(e.URL, client.WithToken(u.Token)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkStore is the full small-payload flow through the SDK, 1 KiB.
func BenchmarkStore(b *testing.B) {
	s := benchSession(b)
	key, payload := client.NewDataKey(), make([]byte, 1024)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Store(context.Background(), key, payload, client.FileMeta{FileName: "b"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRetrieve requests a stored 1 KiB payload and decrypts it.
func BenchmarkRetrieve(b *testing.B) {
	s := benchSession(b)
	key := client.NewDataKey()
	dtk, err := s.Store(context.Background(), key, make([]byte, 1024), client.FileMeta{FileName: "b"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Retrieve(context.Background(), key, dtk); err != nil {
				b.Fatal(err)
			}
		}
	})
}
