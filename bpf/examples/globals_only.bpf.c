// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * An XDP program without any .maps section; its state lives in global
 * variables only, which libbpf turns into the .rodata, .data and .bss maps.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* .rodata: set by the loader before loading, constant afterwards. */
volatile const __u32 globals_verdict = XDP_PASS;
/* .data: initialised, writable. */
__u64 globals_increment = 1;
/* .bss: zero-initialised, writable. */
__u64 globals_packets;

SEC("xdp")
int globals_xdp(struct xdp_md *ctx)
{
	__sync_fetch_and_add(&globals_packets, globals_increment);
	return globals_verdict;
}

char _license[] SEC("license") = "Dual BSD/GPL";
