// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Counts returns from a user-space function, per CPU. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} uretprobe_stats_map SEC(".maps");

SEC("uretprobe/uretprobe_counter")
int uretprobe_counter(void *ctx)
{
	count_in_array(&uretprobe_stats_map, 0);
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
