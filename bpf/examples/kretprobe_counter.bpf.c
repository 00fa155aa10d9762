// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Counts returns from do_unlinkat() per process. The map is pinned by name,
 * so it outlives the program and can be shared with other programs.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

/* tgid -> calls */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} kretprobe_stats_map SEC(".maps");

SEC("kretprobe/do_unlinkat")
int kretprobe_counter(void *ctx)
{
	count_in_hash(&kretprobe_stats_map, bpf_get_current_pid_tgid() >> 32);
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
