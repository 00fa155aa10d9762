// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Counts calls to do_unlinkat(), per CPU. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

/* Key and value given by size rather than by type. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 8);
	__uint(max_entries, 1);
} kprobe_stats_map SEC(".maps");

SEC("kprobe/do_unlinkat")
int kprobe_counter(void *ctx)
{
	count_in_array(&kprobe_stats_map, 0);
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
