// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Counts the packets an XDP program sees, per CPU, then passes them on. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

/* One slot per XDP action; only XDP_PASS is used here. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, XDP_REDIRECT + 1);
} xdp_stats_map SEC(".maps");

SEC("xdp")
int xdp_stats(struct xdp_md *ctx)
{
	count_in_array(&xdp_stats_map, XDP_PASS);
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
