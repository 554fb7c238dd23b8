package emu

import (
	"fmt"
	"testing"

	"tailsim/prog"
	"tailsim/scenarios"
)

func TestZZStep(t *testing.T) {
	for _, b := range []*Backend{NewX86(false), NewArm64(false, false)} {
		for _, v := range prog.Variants {
			sc, _ := scenarios.Parse("t.txtar", []byte(chain))
			w, _ := sc.Build()
			m, err := b.Load(w, v, prog.LoadOptions{Step: true})
			if err != nil {
				t.Fatal(err)
			}
			r := m.Run(w.Prog("entry"), ctx(1))
			fmt.Println("=====", b.Name(), v, r.R0, r.Fault, len(r.Execs), r.Steps)
			ev := 0
			for i, e := range r.Execs {
				for ev < len(r.Trace) && r.Trace[ev].Step <= i {
					fmt.Println("   EVENT", r.Trace[ev])
					ev++
				}
				if i < 400 {
					fmt.Printf("%3d %-16s %-20v %-40s %v %v %v\n", i, e.Machine, e.At, e.Insn, e.Regs, e.Mem, e.Checks)
				}
			}
			for _, c := range r.Costs {
				fmt.Println("COST", c)
			}
			m.Close()
		}
	}
}
