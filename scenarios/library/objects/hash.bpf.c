// SPDX-License-Identifier: GPL-2.0
// tailsim test object: a hash map, which tailsim does not model: loading
// this object is refused, naming the map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("tc")
int entry(struct __sk_buff *skb)
{
	__u32 key = skb->len;
	__u64 *v = bpf_map_lookup_elem(&seen, &key);

	return v ? *v : 0;
}

char LICENSE[] SEC("license") = "GPL";
