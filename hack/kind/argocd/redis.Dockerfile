# Redis for Argo CD's cache: Debian's redis-server, in memory only (no snapshots), on 6379.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      redis-server \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
    && redis-server --version
USER 999:999
ENTRYPOINT ["redis-server", "--bind", "0.0.0.0", "--port", "6379", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
