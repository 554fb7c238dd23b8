// SPDX-License-Identifier: GPL-2.0
// tailsim test object: a tail-call counter in global data (.bss), as the
// kernel's tailcall selftests keep theirs. tailsim does not model global
// data yet: loading this object is refused, naming the map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int count;

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jmp_table SEC(".maps");

SEC("tc")
int entry(struct __sk_buff *skb)
{
	count++;
	bpf_tail_call_static(skb, &jmp_table, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
