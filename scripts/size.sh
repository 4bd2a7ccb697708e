#!/usr/bin/env bash
# The mobile library's size against its budget (README "Size").
#
# Builds libocs_ffi.so the way an app ships it (profile `mobile`, default
# features off: no embedded test server, no `tracing`), measures it
# stripped and gzip -9, prints both beside the budget in
# scripts/size-budget.txt and fails when either is more than 5 % over.
#
#   scripts/size.sh           check (scripts/test.sh runs this)
#   scripts/size.sh --bless   write the measured sizes as the new budget
#                             (after a change that is worth its bytes;
#                             say so in the commit)
#
# Only the host target is measured: Android and iOS builds need their
# SDKs' C compilers (ring compiles C), which this machine does not have.
set -euo pipefail
cd "$(dirname "$0")/.."

budget_file=scripts/size-budget.txt
target=$(rustc -vV | sed -n 's/^host: //p')

cargo build -p ocs-ffi --profile mobile --no-default-features
lib=target/mobile/libocs_ffi.so
stripped=$(stat -c %s "$lib")
gzipped=$(gzip -9 -c "$lib" | wc -c)

if [[ "${1:-}" == "--bless" ]]; then
    {
        echo "# target stripped_bytes gzip9_bytes (scripts/size.sh --bless writes this)"
        echo "$target $stripped $gzipped"
    } >"$budget_file"
    echo "budget for $target: $stripped bytes stripped, $gzipped gzipped"
    exit 0
fi

read -r b_stripped b_gzipped < <(awk -v t="$target" '$1 == t { print $2, $3 }' "$budget_file")
if [[ -z "${b_stripped:-}" ]]; then
    echo "no size budget for $target in $budget_file (scripts/size.sh --bless adds one)" >&2
    exit 1
fi

fail=0
printf '%-10s %12s %12s %8s %12s\n' "measure" "bytes" "budget" "change" "limit (+5%)"
for row in "stripped $stripped $b_stripped" "gzip-9 $gzipped $b_gzipped"; do
    read -r name now budget <<<"$row"
    limit=$((budget + budget / 20))
    change=$(awk -v n="$now" -v b="$budget" 'BEGIN { printf "%+.1f%%", (n - b) * 100 / b }')
    printf '%-10s %12d %12d %8s %12d\n' "$name" "$now" "$budget" "$change" "$limit"
    if ((now > limit)); then
        echo "$name size $now is more than 5 % over the budget $budget" >&2
        fail=1
    fi
done
if ((fail)); then
    cat >&2 <<EOF
The mobile library grew by more than 5 %. Find what grew with
  CARGO_PROFILE_MOBILE_STRIP=false cargo bloat -p ocs-ffi --profile mobile --no-default-features --lib --crates
and either make it smaller or, when it is worth its bytes, run
scripts/size.sh --bless and say why in the commit.
EOF
    exit 1
fi
