// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * An XDP program whose maps are defined the pre-BTF way: struct bpf_map_def
 * records in the "maps" section. libbpf 1.x refuses to open such objects;
 * this one exists to test tools that read the definitions from the ELF file.
 *
 * Keep each definition one field per line with literal numbers for the
 * sizes, entries and flags: tests read the expected values back from this
 * source.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/* Removed from the libbpf 1.x headers; the layout the "maps" section uses. */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

/* Source IPv4 address -> packets. map_flags 1 is BPF_F_NO_PREALLOC. */
struct bpf_map_def SEC("maps") legacy_counts = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = 4,
	.value_size = 8,
	.max_entries = 1024,
	.map_flags = 1,
};

/* Slot 0: packets, slot 1: bytes. */
struct bpf_map_def SEC("maps") legacy_totals = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = 4,
	.value_size = 8,
	.max_entries = 2,
	.map_flags = 0,
};

SEC("xdp")
int legacy_xdp(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 one = 1;
	__u64 *value;

	value = bpf_map_lookup_elem(&legacy_totals, &key);
	if (value)
		__sync_fetch_and_add(value, 1);
	key = 1;
	value = bpf_map_lookup_elem(&legacy_totals, &key);
	if (value)
		__sync_fetch_and_add(value, ctx->data_end - ctx->data);

	key = ctx->ingress_ifindex;
	value = bpf_map_lookup_elem(&legacy_counts, &key);
	if (value)
		__sync_fetch_and_add(value, 1);
	else
		bpf_map_update_elem(&legacy_counts, &key, &one, BPF_NOEXIST);

	return XDP_PASS;
}

char _license[] SEC("license") = "Dual BSD/GPL";
