// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Counts calls to a user-space function. The counters live in an inner array
 * that user space places in slot 0 of an array of maps; until it does, the
 * program counts nothing.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

/* Template of the inner maps: 16 counters. */
struct uprobe_inner_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 16);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 4);
	__array(values, struct uprobe_inner_map);
} uprobe_stats_map SEC(".maps");

SEC("uprobe/uprobe_counter")
int uprobe_counter(void *ctx)
{
	__u32 slot = 0;
	void *inner;

	inner = bpf_map_lookup_elem(&uprobe_stats_map, &slot);
	if (!inner)
		return 0;
	count_in_array(inner, bpf_get_smp_processor_id() & 15);
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
