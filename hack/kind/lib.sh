# Shared by hack/kind/*.sh (sourced): the repository's paths and pins (kind_dir, repo and
# hack/controlplane/versions.env), image names, the cache, and a content-addressed build.
# shellcheck shell=bash
kind_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "${kind_dir}/../.." && pwd)"
# shellcheck source=../controlplane/versions.env
source "${repo}/hack/controlplane/versions.env"
cache_dir="${DEVSERVER_CACHE_DIR:-${HOME}/.cache/devserver-operator}"
cache_bin="${cache_dir}/bin"
DEBIAN_IMAGE="localhost/devserver/debian:bookworm"
DEBIAN_TRIXIE_IMAGE="localhost/devserver/debian:trixie"
NODE_BASE_IMAGE="localhost/devserver/kind-base:bookworm"
NODE_IMAGE="localhost/devserver/kind-node:${KUBERNETES_VERSION}"
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"

step() { printf '==> %s\n' "$*"; }

# BuildKit, for the secret mount that hands the host's CA bundle to package installs during a
# build (a TLS-intercepting network needs it; elsewhere nothing is mounted). A docker client
# without buildx gets the daemon's own client, which has BuildKit built in.
docker_build() {
  local client=(docker)
  if ! docker buildx version >/dev/null 2>&1 && [[ -x /usr/bin/docker ]]; then
    client=(/usr/bin/docker)
  fi
  local ca="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" secret=()
  [[ -f "${ca}" ]] && secret=(--secret "id=ca-certificates,src=${ca}")
  DOCKER_BUILDKIT=1 nice -n 10 "${client[@]}" build --progress=plain "${secret[@]}" "$@"
}

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || echo missing; }
image_label() {
  docker image inspect --format '{{index .Config.Labels "devserver.inputs"}}' "$1" 2>/dev/null || true
}

# Build contexts live in one directory per script run, removed when it exits. new_context is
# called as "$(new_context)", a subshell, so it cannot record what it made in a variable of
# this shell (a list kept here stayed empty and every context leaked: gigabytes in /tmp).
contexts_dir="$(mktemp -d "${TMPDIR:-/tmp}/devserver-image.XXXXXX")"
new_context() { mktemp -d "${contexts_dir}/context.XXXXXX"; }
trap 'rm -rf "${contexts_dir}"' EXIT

# build_image TAG CONTEXT [docker build arguments...]: builds unless the image carries the
# hash of the context, the Dockerfile, the arguments and the base images' ids.
build_image() {
  local tag="$1" context="$2"
  shift 2
  local arguments=("$@") dockerfile="${context}/Dockerfile" index
  for index in "${!arguments[@]}"; do
    [[ "${arguments[index]}" == "-f" ]] && dockerfile="${arguments[index + 1]}"
  done
  local inputs
  inputs="$(
    {
      (cd "${context}" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
      cat "${dockerfile}"
      # The arguments without the Dockerfile's path (its content counts above), so that a
      # clone in another folder finds the same images current.
      printf '%s\n' "${arguments[@]}" | grep -vxF -- "${dockerfile}"
      local base
      for base in $(awk 'toupper($1) == "FROM" { print $2 }' "${dockerfile}"); do
        [[ "${base}" == "scratch" || "${base}" == *'$'* ]] || image_id "${base}"
      done
      printf '%s\n' "${arguments[@]}" | sed -n 's/^\(DEBIAN\|BASE\|NODE\|PYTHON\)_IMAGE=//p' \
        | while read -r base; do image_id "${base}"; done
    } | sha256sum | cut -c1-16
  )"
  if [[ "$(image_label "${tag}")" == "${inputs}" ]]; then
    echo "    ${tag}: current"
    return
  fi
  echo "    ${tag}: building"
  local log="${cache_dir}/logs/$(tr '/:' '__' <<<"${tag}").log"
  mkdir -p "$(dirname "${log}")"
  if ! docker_build -t "${tag}" --label "devserver.inputs=${inputs}" "${arguments[@]}" \
      "${context}" >"${log}" 2>&1; then
    echo "!!! building ${tag} failed; last lines of ${log}:" >&2
    tail -n 30 "${log}" >&2
    return 1
  fi
}

# The Debian roots the local images start from, made once by debootstrap and imported:
# bookworm for every image, trixie (Python 3.13) for OpenHands, which needs Python >= 3.12.
ensure_debian_image() { debian_image bookworm "${DEBIAN_IMAGE}"; }
ensure_debian_trixie_image() { debian_image trixie "${DEBIAN_TRIXIE_IMAGE}"; }

# debian_image SUITE TAG
debian_image() {
  local suite="$1" tag="$2" root
  if docker image inspect "${tag}" >/dev/null 2>&1; then
    echo "    ${tag}: current"
    return
  fi
  command -v debootstrap >/dev/null || apt_install debootstrap
  root="$(new_context)/root"
  echo "    ${tag}: debootstrap --variant=minbase ${suite} (about a minute)"
  nice -n 10 debootstrap --variant=minbase "${suite}" "${root}" http://deb.debian.org/debian \
    >"${root}.log" 2>&1 || { tail -n 20 "${root}.log" >&2; return 1; }
  rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/*
  tar -C "${root}" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "${tag}" >/dev/null
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
