# syntax=docker/dockerfile:1
# Images pinned in global ARG defaults, as cilium does: the tag for people, the digest for
# the builder. FROM lines name the ARGs.
ARG BUILDER_IMAGE=quay.io/example/builder:2024-05-01@sha256:63e917d576887cfc2538546644e4ecdcd6c4eda9523409e79573febb36fef2e1
ARG RUNTIME_IMAGE=quay.io/example/runtime:2024-05-01@sha256:8660ac35181b0e862da96d65fb7782d6601752038410f80393ec6c73338a0e40
ARG VERSION=dev

FROM --platform=${BUILDPLATFORM} ${BUILDER_IMAGE} AS builder
ARG TARGETOS
ARG TARGETARCH
ARG VERSION
WORKDIR /src
RUN --mount=type=cache,target=/root/.cache \
    # The comment lines inside a continued RUN are not part of it.
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -ldflags "-X main.version=${VERSION}" -o /out/${TARGETOS}/${TARGETARCH}/agent ./cmd/agent && \
    for f in /out/*/*/agent; do echo "built $f ($(stat -c %s "$f") bytes, pid $$)"; done

FROM ${RUNTIME_IMAGE} AS release
ARG TARGETOS
ARG TARGETARCH
LABEL maintainer="maintainers@example.com"
ENV AGENT_HOME=/var/lib/agent
COPY --from=builder /out/${TARGETOS}/${TARGETARCH}/agent /usr/bin/agent
WORKDIR ${AGENT_HOME}
CMD ["/usr/bin/agent"]
