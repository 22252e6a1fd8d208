#!/usr/bin/env bash
# Runs every test of snapstack. Idempotent: installs what the tests need
# (nothing from apt yet; the data-plane tests will add NBD tools), fetches
# the pinned Go modules with a timeout and one retry, then vets and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

retry() { "$@" || { echo "retrying: $*" >&2; sleep 5; "$@"; }; }

retry timeout 600 go mod download
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...
go test -count=1 -timeout 20m ./...
