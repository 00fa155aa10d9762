// SPDX-License-Identifier: GPL-2.0-only
/*
 * TC dispatcher, version 1.
 *
 * Attached as a single TC classifier; the stub functions prog0..prog9 are
 * replaced at load time with the user's programs (freplace). CONFIG is
 * rewritten by the loader before the dispatcher is loaded.
 *
 * TC return codes start at TC_ACT_UNSPEC (-1), so the bit tested in
 * chain_call_actions for a return value ret is (1 << (ret + 1)).
 *
 * The layout of struct tc_dispatcher_config, the stub return value and the
 * names of the stubs, of the entry program and of the metadata section form
 * the interface that bpfman expects from a TC dispatcher; do not change them.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define TC_METADATA_SECTION "tc_metadata"
#define TC_DISPATCHER_VERSION 1
/* Returned by a stub; a real program never returns it. */
#define TC_DISPATCHER_RETVAL 30
#define MAX_DISPATCHER_ACTIONS 10

struct tc_dispatcher_config {
	__u8 num_progs_enabled;                           /* slots in use, 0..10 */
	__u32 chain_call_actions[MAX_DISPATCHER_ACTIONS]; /* bit (1 << (ret + 1)): go on */
	__u32 run_prios[MAX_DISPATCHER_ACTIONS];
};

_Static_assert(sizeof(struct tc_dispatcher_config) == 84,
	       "tc_dispatcher_config must be 84 bytes");
_Static_assert(__builtin_offsetof(struct tc_dispatcher_config, num_progs_enabled) == 0,
	       "num_progs_enabled must be at offset 0");
_Static_assert(__builtin_offsetof(struct tc_dispatcher_config, chain_call_actions) == 4,
	       "chain_call_actions must be at offset 4");
_Static_assert(__builtin_offsetof(struct tc_dispatcher_config, run_prios) == 44,
	       "run_prios must be at offset 44");

/* Filled in by the loader through the .rodata map before loading. */
static volatile const struct tc_dispatcher_config CONFIG = {};

/*
 * The stubs: global, never inlined, and not foldable (volatile local, ctx
 * check), so that each one can be the target of freplace.
 */
#define DISPATCHER_STUB(name)                                      \
	__attribute__((noinline)) int name(struct __sk_buff *skb)  \
	{                                                          \
		volatile int ret = TC_DISPATCHER_RETVAL;           \
								   \
		if (!skb)                                          \
			return TC_ACT_UNSPEC;                      \
		return ret;                                        \
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

SEC("classifier/dispatcher")
int tc_dispatcher(struct __sk_buff *skb)
{
	__u8 num_progs_enabled = CONFIG.num_progs_enabled;
	int ret;

	if (num_progs_enabled < 1)
		goto out;
	ret = prog0(skb);
	if (!((1U << (ret + 1)) & CONFIG.chain_call_actions[0]))
		return ret;

	if (num_progs_enabled < 2)
		goto out;
	ret = prog1(skb);
	if (!((1U << (ret + 1)) & CONFIG.chain_call_actions[1]))
		return ret;

	if (num_progs_enabled < 3)
		goto out;
	ret = prog2(skb);
	if (!((1U << (ret + 1)) & CONFIG.chain_call_actions[2]))
		return ret;

	if (num_progs_enabled < 4)
		goto out;
	ret = prog3(skb);
	if (!((1U << (ret + 1)) & CONFIG.chain_call_actions[3]))
		return ret;

	if (num_progs_enabled < 5)
		goto out;
	ret = prog4(skb);
	if (!((1U << (ret + 1)) & CONFIG.chain_call_actions[4]))
		return ret;

	if (num_progs_enabled < 6)
		goto out;
	ret = prog5(skb);
	if (!((1U << (ret + 1)) & CONFIG.chain_call_actions[5]))
		return ret;

	if (num_progs_enabled < 7)
		goto out;
	ret = prog6(skb);
	if (!((1U << (ret + 1)) & CONFIG.chain_call_actions[6]))
		return ret;

	if (num_progs_enabled < 8)
		goto out;
	ret = prog7(skb);
	if (!((1U << (ret + 1)) & CONFIG.chain_call_actions[7]))
		return ret;

	if (num_progs_enabled < 9)
		goto out;
	ret = prog8(skb);
	if (!((1U << (ret + 1)) & CONFIG.chain_call_actions[8]))
		return ret;

	if (num_progs_enabled < 10)
		goto out;
	ret = prog9(skb);
	if (!((1U << (ret + 1)) & CONFIG.chain_call_actions[9]))
		return ret;

	/*
	 * Never reached with a valid configuration; it keeps a call to
	 * compat_test in the program so it can be used as freplace target.
	 */
	if (num_progs_enabled < 11)
		goto out;
	ret = compat_test(skb);
out:
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
__u32 dispatcher_version SEC(TC_METADATA_SECTION) = TC_DISPATCHER_VERSION;
