// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Counts returns from do_unlinkat() through an fexit trampoline: key 0 counts
 * successful calls, key 1 failed ones.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} fexit_stats_map SEC(".maps");

/* ctx[0] = int dfd, ctx[1] = struct filename *name, ctx[2] = int return value */
SEC("fexit/do_unlinkat")
int fexit_counter(__u64 *ctx)
{
	count_in_hash(&fexit_stats_map, (int)ctx[2] == 0 ? 0 : 1);
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
