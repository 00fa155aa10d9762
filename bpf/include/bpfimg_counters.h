/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Small helpers shared by the example programs under bpf/examples.
 * Only kernel UAPI and libbpf headers are used, so every example builds for
 * all target architectures without vmlinux.h or bpf_tracing.h.
 */
#ifndef BPFIMG_COUNTERS_H
#define BPFIMG_COUNTERS_H

#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/*
 * TCX verdicts (enum tcx_action_base in Linux >= 6.6). Own names, because the
 * UAPI headers of older kernels do not have them and newer ones define them
 * as enum constants that a macro of the same name would break.
 */
#define BPFIMG_TCX_NEXT (-1)
#define BPFIMG_TCX_PASS 0
#define BPFIMG_TCX_DROP 2

/* Add one to the __u64 stored at @key of an array or per-cpu array map. */
static __always_inline void count_in_array(void *map, __u32 key)
{
	__u64 *value = bpf_map_lookup_elem(map, &key);

	if (value)
		__sync_fetch_and_add(value, 1);
}

/*
 * Add one to the __u64 stored at @key of a hash-type map, creating the
 * element if it does not exist yet.
 */
static __always_inline void count_in_hash(void *map, __u32 key)
{
	__u64 *value = bpf_map_lookup_elem(map, &key);
	__u64 one = 1;

	if (value) {
		__sync_fetch_and_add(value, 1);
		return;
	}
	bpf_map_update_elem(map, &key, &one, BPF_NOEXIST);
}

/*
 * Context of the syscalls/sys_enter_kill tracepoint, see
 * /sys/kernel/tracing/events/syscalls/sys_enter_kill/format.
 */
struct sys_enter_kill_args {
	__u64 common;     /* common_type, common_flags, ..., common_pid */
	__s32 syscall_nr;
	__u32 pad;
	__s64 pid;        /* pid_t, stored as 8 bytes */
	__s64 sig;        /* int, stored as 8 bytes */
};

/* Record sent through the ring buffer for each kill(2). */
struct kill_event {
	__u32 sender_tgid;
	__u32 sender_pid;
	__s32 target_pid;
	__s32 sig;
	char comm[16];
};

#endif /* BPFIMG_COUNTERS_H */
