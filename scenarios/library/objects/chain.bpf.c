// SPDX-License-Identifier: GPL-2.0
// tailsim test object: a chain of three programs through a prog array
// that its .maps initialiser fills, entered through a subprogram with a
// run-time key and continued with constant keys (bpf_tail_call_static).
// skb->cb[0] counts the programs run; skb->cb[1] is the first key.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int second(struct __sk_buff *skb);
int third(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct __sk_buff *));
} steps SEC(".maps") = {
	.values = {
		[1] = (void *)&second,
		[2] = (void *)&third,
	},
};

SEC("tc")
int third(struct __sk_buff *skb)
{
	skb->cb[0] += 100;
	return skb->cb[0];
}

SEC("tc")
int second(struct __sk_buff *skb)
{
	skb->cb[0] += 10;
	bpf_tail_call_static(skb, &steps, 2);
	return 2;
}

static __noinline int enter(struct __sk_buff *skb, __u32 key)
{
	skb->cb[0] += 1;
	bpf_tail_call(skb, &steps, key);
	return 1;
}

SEC("tc")
int first(struct __sk_buff *skb)
{
	return enter(skb, skb->cb[1]) + 1000;
}

char LICENSE[] SEC("license") = "GPL";
