# syntax=docker/dockerfile:1
#
# The `alpes` image: one binary that runs any service (`alpes up`, with
# ALPES_SERVICES naming which) and the offline tools (`alpes migrate`,
# `alpes admin create`, `alpes token`, ...). docker-compose.yml runs every
# Alpes service and the init job from this one image; docs/deploy.md says how.
#
#   docker build -t alpes:local .
#
# Needs BuildKit (the default builder of Docker Engine 23+ and of
# `docker compose`; for docker-compose 1.29 set DOCKER_BUILDKIT=1 and
# COMPOSE_DOCKER_CLI_BUILD=1): the build caches cargo's registry and target
# directory between builds.

# The toolchain CI builds and tests with (rustc 1.95.0); the workspace declares
# rust-version 1.89, but only 1.95 is tested against Cargo.lock.
ARG RUST_VERSION=1.95

# ---- builder ---------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder

# librdkafka is built from source by rdkafka-sys (OpenSSL's and zlib's
# headers, found with pkg-config); CharLS (JPEG-LS) by charls-sys with cmake;
# OpenJPEG and SQLite (bundled) with the C compiler; the burned-in text safety
# net links Debian's Tesseract (bindgen reads its headers with libclang).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config libssl-dev zlib1g-dev \
      libtesseract-dev libleptonica-dev libclang-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The binary is copied out of the cached target directory (a cache mount is
# not part of the image layer).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p alpes \
 && install -D -m 0755 target/release/alpes /out/alpes

# ---- runtime ---------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# What the binary links at run time (ldd): libssl3/libcrypto3 (librdkafka's
# TLS, reqwest's native-tls), zlib (librdkafka), libstdc++ (CharLS; already in
# the base image, as are libgcc and libc), libtesseract5 and its English model
# (the burned-in text safety net). ca-certificates for TLS peers; curl for the
# health check (HEALTHCHECK below, and the compose file's).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g curl \
      libtesseract5 tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid/gid, so volume ownership is stable across rebuilds.
# /var/lib/alpes is the data dir (alpes.db, local blobs) and keys/ the shared
# key directory; a named volume mounted on either starts with this ownership.
RUN groupadd --system --gid 10001 alpes \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/alpes --no-create-home \
      --shell /usr/sbin/nologin alpes \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/alpes /var/lib/alpes/keys

COPY --from=builder /out/alpes /usr/local/bin/alpes

ENV ALPES_DATA_DIR=/var/lib/alpes \
    ALPES_LISTEN=0.0.0.0:8080

USER 10001:10001
WORKDIR /var/lib/alpes

# Every route, /health and /metrics on one listener (ALPES_LISTEN).
EXPOSE 8080

# GET /health answers 200 when the broker, the ingest store and the blob store
# are up, 503 otherwise. The port is the one in ALPES_LISTEN.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${ALPES_LISTEN##*:}/ready" || exit 1

ENTRYPOINT ["alpes"]
CMD ["up"]
