# syntax=docker/dockerfile:1
#
# One image, two programs: `umbra` (the authorization server and its CLI) and
# `resource-server` (the example API protected by umbra-guard), plus `umbra-bootstrap`
# (deploy/bootstrap.sh). docker-compose.yml runs each as its own service.
#
#   docker build -t umbra:local .
#   docker run --rm umbra:local umbra --help

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The caches keep the crate registry and compiled dependencies between builds; the binaries
# are copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p umbra-server --bin umbra \
        -p umbra-guard --bin resource-server \
 && mkdir -p /out \
 && cp target/release/umbra target/release/resource-server /out/

FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to Postgres or to an https Umbra; curl: the compose health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
# A fixed, unprivileged uid; the data and credentials directories belong to it, so that named
# volumes mounted there are created writable for it.
RUN groupadd --system --gid 10001 umbra \
 && useradd --system --uid 10001 --gid umbra --home-dir /var/lib/umbra --shell /usr/sbin/nologin umbra \
 && mkdir -p /var/lib/umbra/data /var/lib/umbra/credentials \
 && chown -R umbra:umbra /var/lib/umbra \
 && chmod 0700 /var/lib/umbra/credentials
COPY --from=build /out/umbra /out/resource-server /usr/local/bin/
COPY --chmod=0755 deploy/bootstrap.sh /usr/local/bin/umbra-bootstrap

USER umbra:umbra
WORKDIR /var/lib/umbra
# Inside a container, listening on loopback would make the server unreachable.
ENV UMBRA__SERVER__HOST=0.0.0.0 \
    UMBRA__SERVER__PORT=8080 \
    UMBRA__LOG__FORMAT=json
EXPOSE 8080 8081
CMD ["umbra", "serve"]
