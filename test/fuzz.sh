#!/usr/bin/env bash
# test/fuzz.sh: run each fuzz target for a short time (FUZZTIME, 20s by
# default), after the unit tests, which run their corpora (the f.Add seeds
# and testdata/fuzz/) already. A failing input is written to the package's
# testdata/fuzz/ directory: commit it with the fix, and it stays a test.
set -euo pipefail
cd "$(dirname "$0")/.."
time="${FUZZTIME:-20s}"
targets=(
	"./policy FuzzParse"               # config and policy files
	"./seccomp FuzzParseJSON"          # seccomp profiles
	"./cmd/hakoniwa FuzzRunFlags"      # the command line, into the plan
	"./cmd/hakoniwa FuzzParseSize"     # sizes
	"./cmd/hakoniwa FuzzParseIDMap"    # id maps
	"./internal/usernet FuzzParsePort" # published ports
	"./internal/egress FuzzParse"      # the egress allowlist
	"./internal/dbus FuzzReadMessage"  # D-Bus messages from the bus
)
for t in "${targets[@]}"; do
	read -r pkg name _ <<<"$t"
	echo "fuzz: $name in $pkg for $time"
	# Once, as the user who runs it: the fuzzed code is parsing.
	HAKONIWA_TEST_ROOT_ONLY=1 go test -run '^$' -fuzz "^${name}\$" -fuzztime "$time" "$pkg"
done
