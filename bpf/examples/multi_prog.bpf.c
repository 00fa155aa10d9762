// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Several TCX programs in one ELF section, sharing a map and a sub-program
 * (a function in .text that is called, not attached).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

/* Slot 0: tcx_pass, 1: tcx_next, 2: tcx_drop -> packets. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 3);
} tcx_test_map SEC(".maps");

/* Sub-program: counts one packet in @slot and returns @verdict. */
static __attribute__((noinline)) int tcx_record(__u32 slot, int verdict)
{
	count_in_array(&tcx_test_map, slot);
	return verdict;
}

SEC("classifier/tcx_test")
int tcx_pass(struct __sk_buff *skb)
{
	return tcx_record(0, BPFIMG_TCX_PASS);
}

SEC("classifier/tcx_test")
int tcx_next(struct __sk_buff *skb)
{
	return tcx_record(1, BPFIMG_TCX_NEXT);
}

SEC("classifier/tcx_test")
int tcx_drop(struct __sk_buff *skb)
{
	return tcx_record(2, BPFIMG_TCX_DROP);
}

char _license[] SEC("license") = "Dual BSD/GPL";
