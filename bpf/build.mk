# Make fragment that builds the eBPF objects under bpf/.
#
# Include it from the Makefile at the root of the repository (make must run
# there, paths are relative to it):
#
#     include bpf/build.mk
#
# Every bpf/<dir>/<name>.bpf.c is compiled into .output/<name>.bpf/ as four
# objects, named the way bpf2go names them:
#
#     bpf_x86_bpfel.o  bpf_arm64_bpfel.o  bpf_powerpc_bpfel.o  bpf_s390_bpfeb.o
#
# Targets:   bpf (all objects), bpf-clean
# Variables: BPF_SOURCES, BPF_NAMES, BPF_OBJECT_DIRS, BPF_OBJECTS (results);
#            CLANG, BPF_CFLAGS, BPF_HOST_TRIPLET (may be overridden); V=1
#            prints the compiler command lines.
#
# -ffile-prefix-map=$(CURDIR)=. keeps the build directory out of the debug
# information, so a clone in another directory gives identical objects.

# Remember the default goal so that including this file does not make `bpf`
# the default target of the including Makefile; restored at the end.
bpf__saved_default_goal := $(.DEFAULT_GOAL)

BPF_BUILD_MK := $(lastword $(MAKEFILE_LIST))

CLANG ?= clang
BPF_HOST_TRIPLET ?= $(shell gcc -dumpmachine)
BPF_CFLAGS ?= -g -O2 -Wall -Werror
BPF_CPPFLAGS := -Ibpf/include -I/usr/include/$(BPF_HOST_TRIPLET)
BPF_PREFIX_MAP := -ffile-prefix-map=$(CURDIR)=.

BPF_OUTPUT := .output
BPF_SOURCES := $(sort $(wildcard bpf/*/*.bpf.c))
BPF_HEADERS := $(sort $(wildcard bpf/include/*.h bpf/include/*/*.h))
BPF_NAMES := $(notdir $(BPF_SOURCES:.bpf.c=))

ifneq ($(words $(BPF_NAMES)),$(words $(sort $(BPF_NAMES))))
$(error bpf/build.mk: two sources under bpf/ share a name: $(BPF_SOURCES))
endif

# <arch>:<clang target>; the object is bpf_<arch>_<target>.o and the source
# sees __TARGET_ARCH_<arch>.
BPF_ARCHES := x86:bpfel arm64:bpfel powerpc:bpfel s390:bpfeb
bpf__arch = $(word 1,$(subst :, ,$(1)))
bpf__target = $(word 2,$(subst :, ,$(1)))
BPF_OBJECT_NAMES := $(foreach a,$(BPF_ARCHES),bpf_$(call bpf__arch,$(a))_$(call bpf__target,$(a)).o)

BPF_OBJECT_DIRS := $(patsubst %,$(BPF_OUTPUT)/%.bpf,$(BPF_NAMES))
BPF_OBJECTS := $(foreach d,$(BPF_OBJECT_DIRS),$(addprefix $(d)/,$(BPF_OBJECT_NAMES)))

# Short "  BPF  <object>" lines unless V=1 (full commands) or make -s.
ifeq ($(V),1)
bpf__Q :=
bpf__msg = @true
else
bpf__Q := @
bpf__msg = @$(if $(findstring s,$(firstword -$(MAKEFLAGS))),true,printf '  %-8s %s\n')
endif

.PHONY: bpf bpf-clean
bpf: $(BPF_OBJECTS)

$(BPF_OBJECT_DIRS):
	$(bpf__Q)mkdir -p $@

# bpf__rule,<source>,<name>,<arch>,<target>: one object. The compiler writes
# to <object>.tmp, which is renamed on success and removed on failure or
# interruption, so no partial .o is ever left behind (make retries next time).
define bpf__rule
$(BPF_OUTPUT)/$(2).bpf/bpf_$(3)_$(4).o: $(1) $$(BPF_HEADERS) $$(BPF_BUILD_MK) | $(BPF_OUTPUT)/$(2).bpf
	$$(bpf__msg) BPF $$@
	$$(bpf__Q)trap 'rm -f $$@.tmp; exit 130' HUP INT TERM; \
	$$(CLANG) $$(BPF_CFLAGS) -target $(4) -D__TARGET_ARCH_$(3) \
		$$(BPF_CPPFLAGS) $$(BPF_PREFIX_MAP) -c $$< -o $$@.tmp \
		|| { rm -f $$@.tmp; exit 1; }; \
	mv -f $$@.tmp $$@
endef

$(foreach s,$(BPF_SOURCES),\
  $(foreach a,$(BPF_ARCHES),\
    $(eval $(call bpf__rule,$(s),$(notdir $(s:.bpf.c=)),$(call bpf__arch,$(a)),$(call bpf__target,$(a))))))

# Also removes output directories of sources that no longer exist.
bpf-clean:
	rm -rf $(sort $(BPF_OBJECT_DIRS) $(wildcard $(BPF_OUTPUT)/*.bpf))
	rmdir $(BPF_OUTPUT) 2>/dev/null || true

.DEFAULT_GOAL := $(bpf__saved_default_goal)
