package asm

import "testing"

func TestQuick(t *testing.T) {
	src := `
start:
	r1 += 2   # add
	r2 = map[jmp_table]
	w3 = 0
	call bpf_tail_call
	if w0 s> -5 goto start
	*(u64 *)(r10 - 8) = r1
	r0 = *(u32 *)(r1 + 0)
	*(u32 *)(r10 - 16) = 7
	r1 = 0x123456789 ll
	r0 = -r0
	w1 s>>= w2
	call sub1
	exit
`
	insns, err := Parse(src, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + Print(insns))
}
