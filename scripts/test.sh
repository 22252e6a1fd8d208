#!/usr/bin/env bash
# Runs every test of snapstack. Idempotent: installs what the tests need
# (the real NBD clients: qemu-img/qemu-io, nbdcopy/nbdinfo/nbdsh, fio; the
# OCI registry and client of the DSW tests: docker-registry, skopeo) from
# Debian when missing, fetches the pinned Go modules with a timeout and one
# retry, then checks formatting, vets and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

retry() { "$@" || { echo "retrying: $*" >&2; sleep 5; "$@"; }; }

need=()
for pair in qemu-io:qemu-utils nbdcopy:libnbd-bin nbdsh:python3-libnbd fio:fio docker-registry:docker-registry skopeo:skopeo; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  retry timeout 300 $SUDO apt-get update -qq
  retry timeout 600 $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" libnbd-bin >/dev/null
fi

retry timeout 600 go mod download
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...
go test -count=1 -timeout 20m ./...
# The concurrent parts once more under the race detector.
go test -race -count=1 -timeout 20m ./internal/volume ./internal/engine ./internal/nbd ./internal/ecs ./internal/api ./internal/ecd ./cmd/snapstack ./internal/meta/... ./test/e2e
