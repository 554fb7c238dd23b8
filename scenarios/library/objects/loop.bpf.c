// SPDX-License-Identifier: GPL-2.0
// tailsim test object: a program that tail-calls itself until the
// kernel's limit stops it (33 tail calls: it runs 34 times), counting its
// runs in skb->cb[0], and a poisoned site: the map depends on skb->cb[1],
// so the verifier cannot make the call direct.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int self(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int(struct __sk_buff *));
} loop SEC(".maps") = {
	.values = {
		[0] = (void *)&self,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
} other SEC(".maps");

SEC("tc")
int self(struct __sk_buff *skb)
{
	skb->cb[0]++;
	bpf_tail_call_static(skb, &loop, 0);
	return skb->cb[0];
}

SEC("tc")
int poisoned(struct __sk_buff *skb)
{
	void *map = skb->cb[1] ? (void *)&other : (void *)&loop;

	skb->cb[0]++;
	bpf_tail_call(skb, map, 0);
	return 7;
}

char LICENSE[] SEC("license") = "GPL";
