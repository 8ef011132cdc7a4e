package image

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestInflightMerges(t *testing.T) {
	var f inflight
	f.init()
	var runs atomic.Int32
	release := make(chan struct{})
	want := ID{hex: "ab"}
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err, _ := f.do(context.Background(), "k", func(ctx context.Context) (ID, error) {
				runs.Add(1)
				<-release
				return want, nil
			})
			if err != nil || id != want {
				t.Errorf("do = %v, %v", id, err)
			}
		}()
	}
	// Wait until all five wait on one pull, then let it finish.
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		p := f.pulls["k"]
		n := 0
		if p != nil {
			n = p.waiters
		}
		f.mu.Unlock()
		if n == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters after 5s", n)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if runs.Load() != 1 {
		t.Errorf("%d runs, want 1", runs.Load())
	}
}

func TestInflightCancelWhenAllLeave(t *testing.T) {
	var f inflight
	f.init()
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancelled := make(chan struct{})
	started := make(chan struct{})
	fn := func(ctx context.Context) (ID, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return ID{}, ctx.Err()
	}
	errs := make(chan error, 2)
	go func() { _, err, _ := f.do(ctx1, "k", fn); errs <- err }()
	<-started
	go func() { _, err, _ := f.do(ctx2, "k", fn); errs <- err }()
	for {
		f.mu.Lock()
		n := f.pulls["k"].waiters
		f.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel1()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v", err)
	}
	select {
	case <-cancelled:
		t.Fatal("pull cancelled while a caller still waits")
	case <-time.After(50 * time.Millisecond):
	}
	cancel2()
	<-errs
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("pull not cancelled after every caller left")
	}
}
