// SPDX-License-Identifier: GPL-2.0-only
/*
 * XDP dispatcher, version 2.
 *
 * The dispatcher is attached to an interface in place of a single XDP
 * program. Its stub functions prog0..prog9 are replaced at load time with
 * the user's programs (BPF_PROG_TYPE_EXT, "freplace"); the read-only
 * configuration below is rewritten before the dispatcher is loaded and tells
 * it how many slots are in use and which return codes of each program let
 * the chain continue with the next slot.
 *
 * The layout of struct xdp_dispatcher_conf, the magic number, the version,
 * the stub return value and the names of the stubs, of the entry program and
 * of the metadata section form the interface that bpfman expects from an XDP
 * dispatcher; do not change them.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define XDP_METADATA_SECTION "xdp_metadata"
#define XDP_DISPATCHER_VERSION 2
#define XDP_DISPATCHER_MAGIC 236
/* Returned by a stub; a real program never returns it. */
#define XDP_DISPATCHER_RETVAL 31
#define MAX_DISPATCHER_ACTIONS 10

struct xdp_dispatcher_conf {
	__u8 magic;                                 /* XDP_DISPATCHER_MAGIC */
	__u8 dispatcher_version;                    /* XDP_DISPATCHER_VERSION */
	__u8 num_progs_enabled;                     /* slots in use, 0..10 */
	__u8 is_xdp_frags;                          /* 1: dispatcher handles frags */
	__u32 chain_call_actions[MAX_DISPATCHER_ACTIONS]; /* bit (1 << ret): go on */
	__u32 run_prios[MAX_DISPATCHER_ACTIONS];
	__u32 program_flags[MAX_DISPATCHER_ACTIONS];
};

_Static_assert(sizeof(struct xdp_dispatcher_conf) == 124,
	       "xdp_dispatcher_conf must be 124 bytes");
_Static_assert(__builtin_offsetof(struct xdp_dispatcher_conf, magic) == 0,
	       "magic must be at offset 0");
_Static_assert(__builtin_offsetof(struct xdp_dispatcher_conf, dispatcher_version) == 1,
	       "dispatcher_version must be at offset 1");
_Static_assert(__builtin_offsetof(struct xdp_dispatcher_conf, num_progs_enabled) == 2,
	       "num_progs_enabled must be at offset 2");
_Static_assert(__builtin_offsetof(struct xdp_dispatcher_conf, is_xdp_frags) == 3,
	       "is_xdp_frags must be at offset 3");
_Static_assert(__builtin_offsetof(struct xdp_dispatcher_conf, chain_call_actions) == 4,
	       "chain_call_actions must be at offset 4");
_Static_assert(__builtin_offsetof(struct xdp_dispatcher_conf, run_prios) == 44,
	       "run_prios must be at offset 44");
_Static_assert(__builtin_offsetof(struct xdp_dispatcher_conf, program_flags) == 84,
	       "program_flags must be at offset 84");

/* Filled in by the loader through the .rodata map before loading. */
static volatile const struct xdp_dispatcher_conf conf = {
	.magic = XDP_DISPATCHER_MAGIC,
	.dispatcher_version = XDP_DISPATCHER_VERSION,
};

/*
 * The stubs. They are global and never inlined so that each remains a
 * function of its own in the object and can be the target of freplace; the
 * volatile local and the ctx check keep the compiler from folding the call
 * into a constant in the dispatcher.
 */
#define DISPATCHER_STUB(name)                                   \
	__attribute__((noinline)) int name(struct xdp_md *ctx)  \
	{                                                       \
		volatile int ret = XDP_DISPATCHER_RETVAL;       \
								\
		if (!ctx)                                       \
			return XDP_ABORTED;                     \
		return ret;                                     \
	}

DISPATCHER_STUB(prog0)
DISPATCHER_STUB(prog1)
DISPATCHER_STUB(prog2)
DISPATCHER_STUB(prog3)
DISPATCHER_STUB(prog4)
DISPATCHER_STUB(prog5)
DISPATCHER_STUB(prog6)
DISPATCHER_STUB(prog7)
DISPATCHER_STUB(prog8)
DISPATCHER_STUB(prog9)
/* Used by loaders to check that the kernel supports freplace. */
DISPATCHER_STUB(compat_test)

SEC("xdp")
int xdp_dispatcher(struct xdp_md *ctx)
{
	__u8 num_progs_enabled = conf.num_progs_enabled;
	int ret;

	if (num_progs_enabled < 1)
		goto out;
	ret = prog0(ctx);
	if (!((1U << ret) & conf.chain_call_actions[0]))
		return ret;

	if (num_progs_enabled < 2)
		goto out;
	ret = prog1(ctx);
	if (!((1U << ret) & conf.chain_call_actions[1]))
		return ret;

	if (num_progs_enabled < 3)
		goto out;
	ret = prog2(ctx);
	if (!((1U << ret) & conf.chain_call_actions[2]))
		return ret;

	if (num_progs_enabled < 4)
		goto out;
	ret = prog3(ctx);
	if (!((1U << ret) & conf.chain_call_actions[3]))
		return ret;

	if (num_progs_enabled < 5)
		goto out;
	ret = prog4(ctx);
	if (!((1U << ret) & conf.chain_call_actions[4]))
		return ret;

	if (num_progs_enabled < 6)
		goto out;
	ret = prog5(ctx);
	if (!((1U << ret) & conf.chain_call_actions[5]))
		return ret;

	if (num_progs_enabled < 7)
		goto out;
	ret = prog6(ctx);
	if (!((1U << ret) & conf.chain_call_actions[6]))
		return ret;

	if (num_progs_enabled < 8)
		goto out;
	ret = prog7(ctx);
	if (!((1U << ret) & conf.chain_call_actions[7]))
		return ret;

	if (num_progs_enabled < 9)
		goto out;
	ret = prog8(ctx);
	if (!((1U << ret) & conf.chain_call_actions[8]))
		return ret;

	if (num_progs_enabled < 10)
		goto out;
	ret = prog9(ctx);
	if (!((1U << ret) & conf.chain_call_actions[9]))
		return ret;

	/*
	 * Never reached with a valid configuration; it keeps a call to
	 * compat_test in the program so it can be used as freplace target.
	 */
	if (num_progs_enabled < 11)
		goto out;
	ret = compat_test(ctx);
out:
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
__u32 dispatcher_version SEC(XDP_METADATA_SECTION) = XDP_DISPATCHER_VERSION;
