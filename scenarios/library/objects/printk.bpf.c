// SPDX-License-Identifier: GPL-2.0
// tailsim test object: a helper tailsim has no stub for (bpf_trace_printk,
// which bpf_printk calls): loading this object is refused, naming the
// instruction.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int entry(struct __sk_buff *skb)
{
	bpf_printk("len %d", skb->len);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
