# bpfimg: everything a fresh Debian machine needs, then the job at hand.
# Each target installs what it needs first; a second run skips what is already there.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# What the code, the Makefile and the tests need from Debian.
APT_PACKAGES := clang llvm libbpf-dev bpftool shellcheck gcc make skopeo buildah podman docker-registry openssl
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

include bpf/build.mk

.PHONY: help
help:
	@echo "make test    install what is needed, build bpf/, run the whole test suite"
	@echo "make demo    install, build bpf/, inspect every object, build 4-platform images"
	@echo "make lint    ruff + mypy on bpfimg/, shellcheck on shell scripts"
	@echo "make images  build, test, push and sign every image in bpf/images.yaml (REGISTRY=...)"
	@echo "make bench   compare bpfimg with the peer tools (see bench/)"
	@echo "make bpf     compile bpf/ for x86, arm64, powerpc (LE) and s390 (BE)"

.PHONY: apt-deps
apt-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

.PHONY: deps
deps: apt-deps $(BIN)/.installed

# bpf/build.mk's rules need clang, which apt-deps provides.
$(BPF_OBJECTS): | apt-deps

.PHONY: test
test: deps bpf
	$(BIN)/pytest $(PYTEST_ARGS)

DEMO_LAYOUT := .output/images

.PHONY: demo
demo: deps bpf
	@for dir in $(BPF_OBJECT_DIRS); do \
	  echo "== bpfimg inspect $$dir"; \
	  $(BIN)/bpfimg inspect "$$dir" || exit 1; \
	done
	@for dir in $(BPF_OBJECT_DIRS); do \
	  name=$$(basename "$$dir" .bpf); \
	  echo "== bpfimg build -c $$dir -t oci:$(DEMO_LAYOUT):$$name"; \
	  $(BIN)/bpfimg build -c "$$dir" -t "oci:$(DEMO_LAYOUT):$$name" || exit 1; \
	done
	@echo "== bpfimg inspect --verify-labels oci:$(DEMO_LAYOUT):tc_dispatcher"
	@$(BIN)/bpfimg inspect --verify-labels "oci:$(DEMO_LAYOUT):tc_dispatcher" | head -n 12

# make images: every image in bpf/images.yaml, built, structure-tested, pushed and signed by
# one bpfimg call; images whose tag is already present are skipped. Variables as in bpfman's
# examples Makefile: REGISTRY (default: an OCI layout per image under .output/images),
# USER_BC (repository path), TAG_BC (fixed tag; default: from git), PLATFORM (comma list).
REGISTRY ?= oci:.output/images
USER_BC ?=
TAG_BC ?=
PLATFORM ?=
SIGN_KEY ?=
IMAGES_ARGS ?=

.PHONY: images
images: deps bpf
	$(BIN)/bpfimg build --from bpf/images.yaml --registry '$(REGISTRY)' \
	  $(if $(USER_BC),--repository '$(USER_BC)') $(if $(TAG_BC),--image-tag '$(TAG_BC)') \
	  $(if $(PLATFORM),--platforms '$(PLATFORM)') $(if $(SIGN_KEY),--sign-key '$(SIGN_KEY)') \
	  $(IMAGES_ARGS)

.PHONY: lint
lint: deps
	$(BIN)/ruff check bpfimg tests bench
	$(BIN)/ruff format --check bpfimg tests bench
	$(BIN)/mypy bpfimg
	shellcheck .ci/run
	$(BIN)/hadolint containerfiles/Containerfile.bytecode containerfiles/Containerfile.bytecode.multi.arch

.PHONY: bench
bench: deps bpf
	$(BIN)/python bench/inspect_vs_libbpf.py
	$(BIN)/python bench/build_vs_buildah.py
	$(BIN)/python bench/push_vs_skopeo.py

.PHONY: clean
clean: bpf-clean
	rm -rf .pytest_cache .mypy_cache .ruff_cache
