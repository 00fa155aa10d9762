// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Sends a record of every kill(2) call to user space through a ring buffer. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "bpfimg_counters.h"

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

char _license[] SEC("license") = "Dual BSD/GPL";
