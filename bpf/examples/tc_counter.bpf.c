// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Counts packets per EtherType in a TC classifier and lets them through. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

/* EtherType (network byte order, as in skb->protocol) -> packets. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tc_stats_map SEC(".maps");

SEC("classifier/stats")
int stats(struct __sk_buff *skb)
{
	count_in_hash(&tc_stats_map, skb->protocol);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
