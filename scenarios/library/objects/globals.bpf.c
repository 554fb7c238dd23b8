// SPDX-License-Identifier: GPL-2.0
// tailsim test object: tail calls counted in global data, as the kernel's
// tailcall selftests count theirs. A .bss counter, a .rodata bound set at
// build time, a .data variable with an initial value, and an array map
// looked up on every run (the selftests' "noise" lookup: the verifier
// inlines it into the program, so the tail call follows other code).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int count;                          /* .bss: classifier runs */
__u32 first_key = 7;                /* .data: the key entry used */
const volatile __u32 stop = 20;     /* .rodata: when classifier stops */

int classifier(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct __sk_buff *));
} jmp_table SEC(".maps") = {
	.values = {
		[0] = (void *)&classifier,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} noise SEC(".maps");

SEC("tc")
int classifier(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&noise, &key);

	if (n)
		*n += 1;
	count++;
	if (count < stop)
		bpf_tail_call_static(skb, &jmp_table, 0);
	return count;
}

SEC("tc")
int entry(struct __sk_buff *skb)
{
	first_key = skb->cb[0];
	bpf_tail_call(skb, &jmp_table, first_key);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
