// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One object holding all ten program kinds of the single-program examples,
 * each with its own map, the way an application ships several programs in
 * one image.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

/* ---- XDP ---------------------------------------------------------------- */

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

/* ---- TC ----------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tc_stats_map SEC(".maps");

SEC("classifier/stats")
int stats(struct __sk_buff *skb)
{
	count_in_hash(&tc_stats_map, skb->protocol);
	return TC_ACT_OK;
}

/* ---- TCX ---------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
} tcx_stats_map SEC(".maps");

SEC("classifier/tcx_stats")
int tcx_stats(struct __sk_buff *skb)
{
	count_in_hash(&tcx_stats_map, skb->ifindex);
	return BPFIMG_TCX_NEXT;
}

/* ---- tracepoint --------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} tracepoint_stats_map SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_kill")
int tracepoint_kill_recorder(struct sys_enter_kill_args *ctx)
{
	struct kill_event *event;
	__u64 pid_tgid;

	event = bpf_ringbuf_reserve(&tracepoint_stats_map, sizeof(*event), 0);
	if (!event)
		return 0;

	pid_tgid = bpf_get_current_pid_tgid();
	event->sender_tgid = pid_tgid >> 32;
	event->sender_pid = (__u32)pid_tgid;
	event->target_pid = (__s32)ctx->pid;
	event->sig = (__s32)ctx->sig;
	bpf_get_current_comm(event->comm, sizeof(event->comm));

	bpf_ringbuf_submit(event, 0);
	return 0;
}

/* ---- kprobe ------------------------------------------------------------- */

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

/* ---- kretprobe ---------------------------------------------------------- */

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

/* ---- uprobe ------------------------------------------------------------- */

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

/* ---- uretprobe ---------------------------------------------------------- */

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

/* ---- fentry ------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} fentry_stats_map SEC(".maps");

SEC("fentry/do_unlinkat")
int fentry_counter(__u64 *ctx)
{
	count_in_array(&fentry_stats_map, 0);
	return 0;
}

/* ---- fexit -------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 2);
} fexit_stats_map SEC(".maps");

SEC("fexit/do_unlinkat")
int fexit_counter(__u64 *ctx)
{
	count_in_hash(&fexit_stats_map, (int)ctx[2] == 0 ? 0 : 1);
	return 0;
}

char _license[] SEC("license") = "Dual BSD/GPL";
