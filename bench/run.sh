#!/usr/bin/env bash
# bench/run.sh: compare hakoniwa with bubblewrap (bwrap) on the same sandbox.
#
# Usage: bench/run.sh [-n N] [--no-unpriv] [--breakdown] [-- HKBENCH_FLAGS...]
#
#   -n N          CLI runs per side (default 200, or $N)
#   --no-unpriv   only run as the current user (default: when run as root,
#                 also run everything again as uid/gid 65534 with setpriv)
#   --breakdown   also measure library and bwrap spawns with fewer namespaces
#   -- FLAGS      passed on to the Go driver (see: go run ./bench/cmd/hkbench -h),
#                 such as -- -limits "--memory 256M --pids 64" for the cost of a cgroup
#
# Environment: N (iterations), UNPRIV=0 (same as --no-unpriv), BREAKDOWN=1.
#
# It installs bubblewrap from Debian's packages when bwrap is missing (as
# root), builds hakoniwa with CGO_ENABLED=0 and the driver into a temporary
# directory, and prints markdown tables that can be pasted into
# docs/BENCHMARKS.md. With the defaults it takes about 1.5 minutes.
set -euo pipefail

N="${N:-200}"
UNPRIV="${UNPRIV:-1}"
BREAKDOWN="${BREAKDOWN:-0}"
EXTRA=()
while [ $# -gt 0 ]; do
	case "$1" in
	-n) N="$2"; shift 2 ;;
	-n=*|--n=*) N="${1#*=}"; shift ;;
	--no-unpriv) UNPRIV=0; shift ;;
	--breakdown) BREAKDOWN=1; shift ;;
	-h|--help) sed -n '2,19p' "$0"; exit 0 ;;
	--) shift; EXTRA=("$@"); break ;;
	*) echo "run.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
	esac
done
case "$N" in
''|*[!0-9]*) echo "run.sh: N must be a positive integer, got '$N'" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v bwrap >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ]; then
		echo "run.sh: bwrap not found, installing bubblewrap" >&2
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap
	else
		echo "run.sh: bwrap not found; install it first: sudo apt-get install bubblewrap" >&2
		exit 1
	fi
fi

# A private, world-readable directory: /tmp is shared with other users, and
# the unprivileged run must be able to execute the binaries.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/hkbench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"

echo "run.sh: building hakoniwa (CGO_ENABLED=0) and the driver in $WORK" >&2
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/hakoniwa" ./cmd/hakoniwa)
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/hkbench" ./bench/cmd/hkbench)
chmod 755 "$WORK/hakoniwa" "$WORK/hkbench"

ARGS=(-n "$N" -hakoniwa "$WORK/hakoniwa" -bwrap "$(command -v bwrap)")
if [ "$BREAKDOWN" = 1 ]; then
	ARGS+=(-breakdown)
fi
ARGS+=(${EXTRA[@]+"${EXTRA[@]}"})

echo "# bench/run.sh -n $N $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
echo
cd "$WORK"
"$WORK/hkbench" "${ARGS[@]}"

if [ "$(id -u)" -eq 0 ] && [ "$UNPRIV" != 0 ]; then
	if command -v setpriv >/dev/null 2>&1; then
		echo
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$WORK/hkbench" "${ARGS[@]}" -label "unprivileged (uid 65534)"
	else
		echo "run.sh: setpriv not found (util-linux); skipping the unprivileged run" >&2
	fi
fi
