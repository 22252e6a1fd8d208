package blobtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/snapstack/snapstack/internal/blob"
	"github.com/snapstack/snapstack/internal/blob/blobtest"
	"github.com/snapstack/snapstack/internal/blob/mem"
)

// Without faults, Faulty is a conforming backend.
func TestFaultyConformance(t *testing.T) {
	blobtest.Run(t, func(*testing.T) blob.Backend { return blobtest.NewFaulty(mem.New()) })
}

func TestFaultyFail(t *testing.T) {
	ctx := context.Background()
	f := blobtest.NewFaulty(mem.New())
	boom := errors.New("disk on fire")
	f.Fail(blobtest.OpPut, boom)
	if err := f.Put(ctx, "a", []byte("x")); !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want the injected error", err)
	}
	if _, err := f.Inner().Stat(ctx, "a"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a failing Put reached the backend: %v", err)
	}
	f.Clear()
	if err := f.Put(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, op := range []blobtest.Op{blobtest.OpGet, blobtest.OpStat, blobtest.OpList, blobtest.OpDelete} {
		f.Fail(op, nil)
	}
	if _, err := f.Get(ctx, "a"); !errors.Is(err, blobtest.ErrInjected) {
		t.Errorf("Get = %v", err)
	}
	if _, err := f.Stat(ctx, "a"); !errors.Is(err, blobtest.ErrInjected) {
		t.Errorf("Stat = %v", err)
	}
	if err := f.List(ctx, "", func(string) error { return nil }); !errors.Is(err, blobtest.ErrInjected) {
		t.Errorf("List = %v", err)
	}
	if err := f.Delete(ctx, "a"); !errors.Is(err, blobtest.ErrInjected) {
		t.Errorf("Delete = %v", err)
	}
	if f.Calls(blobtest.OpPut) != 2 || f.Calls(blobtest.OpGet) != 1 || f.Calls(blobtest.OpDelete) != 1 {
		t.Errorf("counters: Put %d, Get %d, Delete %d", f.Calls(blobtest.OpPut), f.Calls(blobtest.OpGet), f.Calls(blobtest.OpDelete))
	}
	f.ResetCalls()
	if f.Calls(blobtest.OpPut) != 0 {
		t.Error("ResetCalls kept a counter")
	}
}

func TestFaultyFailAfterTakesEffect(t *testing.T) {
	ctx := context.Background()
	f := blobtest.NewFaulty(mem.New())
	f.FailAfter(blobtest.OpPut, nil)
	if err := f.Put(ctx, "lost/response", []byte("x")); !errors.Is(err, blobtest.ErrInjected) {
		t.Fatalf("Put = %v", err)
	}
	if got, err := f.Inner().Get(ctx, "lost/response"); err != nil || string(got) != "x" {
		t.Fatalf("the Put did not take effect: %q, %v", got, err)
	}
}

func TestFaultySelectiveFault(t *testing.T) {
	ctx := context.Background()
	f := blobtest.NewFaulty(mem.New())
	f.SetFault(blobtest.OpGet, func(name string) error {
		if name == "bad" {
			return blobtest.ErrInjected
		}
		return nil
	})
	for _, name := range []string{"good", "bad"} {
		if err := f.Put(ctx, name, []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Get(ctx, "good"); err != nil {
		t.Errorf("Get(good) = %v", err)
	}
	if _, err := f.Get(ctx, "bad"); !errors.Is(err, blobtest.ErrInjected) {
		t.Errorf("Get(bad) = %v", err)
	}
}

func TestFaultyCorruption(t *testing.T) {
	ctx := context.Background()
	f := blobtest.NewFaulty(mem.New())
	if err := f.Put(ctx, "obj", []byte{0x00, 0xff}); err != nil {
		t.Fatal(err)
	}
	if err := f.FlipBit(ctx, "obj", 9); err != nil {
		t.Fatal(err)
	}
	got, _ := f.Get(ctx, "obj")
	if string(got) != "\x00\xfd" {
		t.Fatalf("after FlipBit(9): %x", got)
	}
	err := f.Corrupt(ctx, "obj", func(b []byte) []byte { return b[:1] })
	if got, _ := f.Get(ctx, "obj"); err != nil || string(got) != "\x00" {
		t.Fatalf("after truncation: %x, %v", got, err)
	}
	if err := f.FlipBit(ctx, "missing", 0); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("FlipBit of a missing object = %v", err)
	}
	if n := f.Calls(blobtest.OpGet); n != 2 {
		t.Fatalf("corruption helpers were counted: %d Gets", n)
	}
}
