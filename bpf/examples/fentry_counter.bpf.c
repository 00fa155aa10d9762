// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Counts calls to do_unlinkat() through an fentry trampoline. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} fentry_stats_map SEC(".maps");

/* ctx[0] = int dfd, ctx[1] = struct filename *name */
SEC("fentry/do_unlinkat")
int fentry_counter(__u64 *ctx)
{
	count_in_array(&fentry_stats_map, 0);
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
