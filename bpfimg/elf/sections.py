"""libbpf's section-name table: which ELF section name gives which kernel program type.

The entries follow libbpf's ``section_defs`` and its matching rules:

- ``"xdp"`` matches only the exact section name;
- ``"kprobe+"`` matches ``kprobe`` or ``kprobe/<anything>`` (the part after ``/`` names the
  attach target, e.g. ``kprobe/do_unlinkat`` attaches to ``do_unlinkat``);
- ``"sk_skb/"``-style entries ending in ``/`` need at least that prefix.

libbpf 1.0 dropped the older, looser rule that only the part before the first ``/`` has to
match (so ``classifier/stats`` or ``xdp/foo``), but bpfman's loaders (aya and cilium/ebpf)
still accept it and bpfman's own TC dispatcher uses ``classifier/dispatcher``. We resolve
such names the loose way and report that libbpf itself would not recognise them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class SectionDef:
    pattern: str
    prog_type: str
    attach_type: str | None = None
    sleepable: bool = False
    min_libbpf: str = "1.0"
    """The first libbpf release that knows this name."""

    @property
    def prefix(self) -> str:
        return self.pattern.rstrip("+")

    def matches(self, section: str) -> bool:
        if self.pattern.endswith("/"):
            return section.startswith(self.pattern)
        if self.pattern.endswith("+"):
            prefix = self.prefix
            return section == prefix or section.startswith(prefix + "/")
        return section == self.pattern

    def attach_target(self, section: str) -> str | None:
        """What the section name says to attach to, for ``type+`` entries."""
        if self.pattern.endswith("+") and section.startswith(self.prefix + "/"):
            return section[len(self.prefix) + 1 :] or None
        return None


def _d(
    pattern: str,
    prog_type: str,
    attach_type: str | None = None,
    sleepable: bool = False,
    min_libbpf: str = "1.0",
) -> SectionDef:
    return SectionDef(pattern, prog_type, attach_type, sleepable, min_libbpf)


# Order matters: the first match wins, exactly as in libbpf.
SECTION_DEFS: tuple[SectionDef, ...] = (
    _d("socket", "socket_filter"),
    _d("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate"),
    _d("sk_reuseport", "sk_reuseport", "sk_reuseport_select"),
    _d("kprobe+", "kprobe"),
    _d("uprobe+", "kprobe"),
    _d("uprobe.s+", "kprobe", sleepable=True),
    _d("kretprobe+", "kprobe"),
    _d("uretprobe+", "kprobe"),
    _d("uretprobe.s+", "kprobe", sleepable=True),
    _d("kprobe.multi+", "kprobe", "trace_kprobe_multi"),
    _d("kretprobe.multi+", "kprobe", "trace_kprobe_multi"),
    _d("kprobe.session+", "kprobe", "trace_kprobe_session", min_libbpf="1.5"),
    _d("uprobe.multi+", "kprobe", "trace_uprobe_multi", min_libbpf="1.3"),
    _d("uretprobe.multi+", "kprobe", "trace_uprobe_multi", min_libbpf="1.3"),
    _d("uprobe.multi.s+", "kprobe", "trace_uprobe_multi", sleepable=True, min_libbpf="1.3"),
    _d("uretprobe.multi.s+", "kprobe", "trace_uprobe_multi", sleepable=True, min_libbpf="1.3"),
    _d("ksyscall+", "kprobe"),
    _d("kretsyscall+", "kprobe"),
    _d("usdt+", "kprobe"),
    _d("usdt.s+", "kprobe", sleepable=True, min_libbpf="1.3"),
    _d("tc/ingress", "sched_cls", "tcx_ingress", min_libbpf="1.3"),
    _d("tc/egress", "sched_cls", "tcx_egress", min_libbpf="1.3"),
    _d("tcx/ingress", "sched_cls", "tcx_ingress", min_libbpf="1.3"),
    _d("tcx/egress", "sched_cls", "tcx_egress", min_libbpf="1.3"),
    _d("tc", "sched_cls"),
    _d("classifier", "sched_cls"),
    _d("action", "sched_act"),
    _d("netkit/primary", "sched_cls", "netkit_primary", min_libbpf="1.4"),
    _d("netkit/peer", "sched_cls", "netkit_peer", min_libbpf="1.4"),
    _d("tracepoint+", "tracepoint"),
    _d("tp+", "tracepoint"),
    _d("raw_tracepoint+", "raw_tracepoint"),
    _d("raw_tp+", "raw_tracepoint"),
    _d("raw_tracepoint.w+", "raw_tracepoint_writable"),
    _d("raw_tp.w+", "raw_tracepoint_writable"),
    _d("tp_btf+", "tracing", "trace_raw_tp"),
    _d("fentry+", "tracing", "trace_fentry"),
    _d("fmod_ret+", "tracing", "modify_return"),
    _d("fexit+", "tracing", "trace_fexit"),
    _d("fentry.s+", "tracing", "trace_fentry", sleepable=True),
    _d("fmod_ret.s+", "tracing", "modify_return", sleepable=True),
    _d("fexit.s+", "tracing", "trace_fexit", sleepable=True),
    _d("freplace+", "ext"),
    _d("lsm+", "lsm", "lsm_mac"),
    _d("lsm.s+", "lsm", "lsm_mac", sleepable=True),
    _d("lsm_cgroup+", "lsm", "lsm_cgroup"),
    _d("iter+", "tracing", "trace_iter"),
    _d("iter.s+", "tracing", "trace_iter", sleepable=True),
    _d("syscall", "syscall", sleepable=True),
    _d("xdp.frags/devmap", "xdp", "xdp_devmap"),
    _d("xdp/devmap", "xdp", "xdp_devmap"),
    _d("xdp.frags/cpumap", "xdp", "xdp_cpumap"),
    _d("xdp/cpumap", "xdp", "xdp_cpumap"),
    _d("xdp.frags", "xdp", "xdp"),
    _d("xdp", "xdp", "xdp"),
    _d("perf_event", "perf_event"),
    _d("lwt_in", "lwt_in"),
    _d("lwt_out", "lwt_out"),
    _d("lwt_xmit", "lwt_xmit"),
    _d("lwt_seg6local", "lwt_seg6local"),
    _d("sockops", "sock_ops", "cgroup_sock_ops"),
    _d("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser"),
    _d("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict"),
    _d("sk_skb", "sk_skb"),
    _d("sk_msg", "sk_msg", "sk_msg_verdict"),
    _d("lirc_mode2", "lirc_mode2", "lirc_mode2"),
    _d("flow_dissector", "flow_dissector", "flow_dissector"),
    _d("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"),
    _d("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress"),
    _d("cgroup/skb", "cgroup_skb"),
    _d("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create"),
    _d("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release"),
    _d("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create"),
    _d("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind"),
    _d("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind"),
    _d("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind"),
    _d("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind"),
    _d("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect"),
    _d("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect"),
    _d("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg"),
    _d("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg"),
    _d("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg"),
    _d("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg"),
    _d("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername"),
    _d("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername"),
    _d("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname"),
    _d("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname"),
    _d("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl"),
    _d("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt"),
    _d("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt"),
    _d("cgroup/dev", "cgroup_device", "cgroup_device"),
    _d("struct_ops+", "struct_ops"),
    _d("struct_ops.s+", "struct_ops", sleepable=True, min_libbpf="1.2"),
    _d("sk_lookup", "sk_lookup", "sk_lookup"),
    _d("netfilter", "netfilter", "netfilter", min_libbpf="1.2"),
)


@dataclass(frozen=True)
class SectionMatch:
    definition: SectionDef | None
    libbpf_strict: bool
    """True when libbpf >= 1.0 itself accepts the name (possibly needing a newer libbpf,
    see ``definition.min_libbpf``); False when only the pre-1.0 rule used by aya and
    cilium/ebpf resolves it."""
    attach_target: str | None


@functools.lru_cache(maxsize=4096)
def match_section(section: str) -> SectionMatch:
    """Resolve a program section name the way libbpf does, then the way older loaders do."""
    name = section.removeprefix("?")  # libbpf: "?" marks a program not autoloaded
    for definition in SECTION_DEFS:
        if definition.matches(name):
            return SectionMatch(definition, True, definition.attach_target(name))
    # The pre-1.0 rule: only the part up to the first "/" is looked at, and the rest is
    # a free-form name (e.g. bpfman's "classifier/dispatcher").
    first = name.split("/", 1)[0]
    for definition in SECTION_DEFS:
        if definition.pattern.rstrip("+/") == first and not definition.pattern.endswith("/"):
            return SectionMatch(definition, False, None)
    return SectionMatch(None, False, None)
