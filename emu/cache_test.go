package emu

import (
	"fmt"
	"testing"

	"tailsim/prog"
	"tailsim/scenarios"
)

func TestSubtract(t *testing.T) {
	for _, tc := range []struct {
		r    [2]uint64
		cut  [][2]uint64
		want string
	}{
		{[2]uint64{10, 20}, nil, "[[10 20]]"},
		{[2]uint64{10, 20}, [][2]uint64{{0, 10}, {20, 30}}, "[[10 20]]"},
		{[2]uint64{10, 20}, [][2]uint64{{12, 14}, {16, 17}}, "[[10 12] [14 16] [17 20]]"},
		{[2]uint64{10, 20}, [][2]uint64{{5, 25}}, "[]"},
		{[2]uint64{10, 20}, [][2]uint64{{15, 25}}, "[[10 15]]"},
	} {
		if got := fmt.Sprint(subtract(tc.r, tc.cut)); got != tc.want {
			t.Errorf("subtract(%v, %v) = %s, want %s", tc.r, tc.cut, got, tc.want)
		}
	}
}

// After a load, the arena holds this world's code and zeros, whatever was
// loaded before: the code of an earlier world is gone.
func TestEarlierWorldsCodeCleared(t *testing.T) {
	b := NewX86(0)
	load := func(src string) *machine {
		sc, err := scenarios.Parse("t.txtar", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		w, _ := sc.Build()
		m, err := b.Load(w, prog.Linux618, prog.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m.(*machine)
	}
	first := load(chain)
	old := append([][2]uint64(nil), first.code...)
	first.Close()
	second := load("one program\n-- prog solo stack=64 --\n\tr0 = 3\n\texit\n-- run --\nrun solo\n")
	defer second.Close()
	for _, r := range old {
		for _, gap := range subtract(r, second.code) {
			got, err := second.e.memRead(gap[0], gap[1]-gap[0])
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range got {
				if c != 0 {
					t.Fatalf("%#x: byte %#x of the earlier world's code left", gap[0]+uint64(i), c)
				}
			}
		}
	}
}
