// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Counts packets per interface in a TCX program and hands them to the next
 * program. bpfman ships TCX programs in "classifier/..." sections.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

/* ifindex -> packets; the least recently used interfaces are evicted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
} tcx_stats_map SEC(".maps");

SEC("classifier/tcx_stats")
int tcx_stats(struct __sk_buff *skb)
{
	count_in_hash(&tcx_stats_map, skb->ifindex);
	return BPFIMG_TCX_NEXT;
}

char _license[] SEC("license") = "Dual BSD/GPL";
