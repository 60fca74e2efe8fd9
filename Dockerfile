# devserver-operator image: the locked dependencies (uv.lock) in a venv, on slim Python.
#   docker build -t ghcr.io/ecospherenetwork/devserver-operator:dev .
# No `# syntax` line: BuildKit's built-in frontend runs it, so a build needs no registry for the
# frontend. Behind a TLS-intercepting proxy, hand the CA bundle to the package installs with
#   --secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt   (hack/kind/images.sh does)

# The base image, pinned by tag and by the digest of its multi-architecture index. Dependabot
# (.github/dependabot.yml, docker) keeps this line current. PYTHON_IMAGE names the stage the
# stages below start from: this one by default; hack/kind/images.sh passes a locally built
# stand-in (--build-arg PYTHON_IMAGE=localhost/devserver/python:3.11-bookworm), and BuildKit then
# never pulls the official image.
ARG PYTHON_IMAGE=python-base
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS python-base

# -- build: resolve nothing, install exactly what uv.lock says --------------------------
FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
# uv in a venv of its own: works on any Python base, including one whose pip is
# "externally managed" (Debian's).
RUN --mount=type=secret,id=ca-certificates,target=/run/secrets/ca.crt \
    if [ -s /run/secrets/ca.crt ]; then export PIP_CERT=/run/secrets/ca.crt; fi \
    && python3.11 -m venv /opt/uv && /opt/uv/bin/pip install "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first, so a source change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=secret,id=ca-certificates,target=/run/secrets/ca.crt \
    if [ -s /run/secrets/ca.crt ]; then export SSL_CERT_FILE=/run/secrets/ca.crt; fi \
    && /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3.11
COPY operator/ operator/
# --no-editable: the package is copied into the venv, /src is not needed at run time.
RUN --mount=type=secret,id=ca-certificates,target=/run/secrets/ca.crt \
    if [ -s /run/secrets/ca.crt ]; then export SSL_CERT_FILE=/run/secrets/ca.crt; fi \
    && /opt/uv/bin/uv sync --frozen --no-dev --no-editable --python /usr/local/bin/python3.11

# -- the console's venv: the same, plus the extra [console] (FastAPI, uvicorn, PyJWT) -------
# Its build context also holds the web UI, built by hack/console/build.sh into
# operator/devserver_operator/console/ui/, which the package then carries (hack/console/image.sh).
FROM build AS build-console
RUN --mount=type=secret,id=ca-certificates,target=/run/secrets/ca.crt \
    if [ -s /run/secrets/ca.crt ]; then export SSL_CERT_FILE=/run/secrets/ca.crt; fi \
    && /opt/uv/bin/uv sync --frozen --no-dev --no-editable --extra console \
      --python /usr/local/bin/python3.11 \
    && test -f /opt/venv/lib/python3.11/site-packages/devserver_operator/console/ui/index.html

# -- runtime-base: what the operator and console images share: labels, environment, user ----
# No compilers, no package caches: each image copies in its venv and nothing else.
FROM ${PYTHON_IMAGE} AS runtime-base
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.source="https://github.com/ecospherenetwork/devserver-operator" \
      org.opencontainers.image.url="https://github.com/ecospherenetwork/devserver-operator" \
      org.opencontainers.image.vendor="EcoSphere Network" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# A numeric UID, so that Kubernetes can check runAsNonRoot without resolving a name.
USER 10001:10001

# -- console: `docker build --target console` (docs/console.md); the operator stays lean -----
FROM runtime-base AS console
LABEL org.opencontainers.image.title="devserver-console" \
      org.opencontainers.image.description="Web console and REST API of devserver-operator: every request runs as its user" \
      org.opencontainers.image.documentation="https://github.com/ecospherenetwork/devserver-operator/blob/main/docs/console.md"
COPY --from=build-console /opt/venv /opt/venv
EXPOSE 8080
# The chart passes `console --host 0.0.0.0 --port N` as arguments.
ENTRYPOINT ["devserver-operator"]
CMD ["console", "--host", "0.0.0.0"]

# -- the operator, the default target ----------------------------------------------------
FROM runtime-base
LABEL org.opencontainers.image.title="devserver-operator" \
      org.opencontainers.image.description="Kubernetes operator for MCP servers, n8n workflows, OpenHands, alerts and team access" \
      org.opencontainers.image.documentation="https://github.com/ecospherenetwork/devserver-operator/blob/main/docs/operations.md"
COPY --from=build /opt/venv /opt/venv
EXPOSE 8080 8081
ENTRYPOINT ["devserver-operator", "run"]
