#!/usr/bin/env bash
# The mobile library's size against its budget (README "Size").
#
# Builds libocs_ffi.so the way an app ships it (profile `mobile`, default
# features off: no embedded test server, no `tracing`, no DNS SRV, no
# certificate provisioning, no HTTP client of its own, no C API), measures
# it stripped and gzip -9 for each target (and profile `mobile-abort` on
# aarch64), prints both beside the budget in scripts/size-budget.txt and
# fails when either is more than 5 % over.
#
#   scripts/size.sh           check (scripts/test.sh runs this)
#   scripts/size.sh --bless   write the measured sizes as the new budget
#                             (after a change that is worth its bytes;
#                             say so in the commit)
#
# Targets: the host (x86_64 Linux), and aarch64-unknown-linux-gnu when its
# Rust standard library and Debian's cross compiler (gcc-aarch64-linux-gnu,
# ring compiles C) are installed: the architecture of Android's arm64-v8a
# ABI, with glibc instead of Bionic (there is no Android NDK here). When
# they are missing that target is reported as not measured, not failed.
set -euo pipefail
cd "$(dirname "$0")/.."

budget_file=scripts/size-budget.txt
host=$(rustc -vV | sed -n 's/^host: //p')
arm=aarch64-unknown-linux-gnu

measure() { # key ("target" or "target:profile") -> "stripped gzipped" of its libocs_ffi.so
    local t=${1%%:*} profile=mobile lib
    [[ "$1" == *:* ]] && profile=${1#*:}
    if [[ "$t" == "$host" ]]; then
        cargo build -q -p ocs-ffi --profile "$profile" --no-default-features >&2
        lib=target/$profile/libocs_ffi.so
    else
        CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
        AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
            cargo build -q -p ocs-ffi --profile "$profile" --no-default-features --target "$t" >&2
        lib=target/$t/$profile/libocs_ffi.so
    fi
    echo "$(stat -c %s "$lib") $(gzip -9 -c "$lib" | wc -c)"
}

# The mobile profile on both targets; on aarch64 also mobile-abort (a
# panic ends the app instead of failing the call: smaller, see README).
targets=("$host")
if rustup target list --installed 2>/dev/null | grep -qx "$arm" && command -v aarch64-linux-gnu-gcc >/dev/null; then
    targets+=("$arm" "$arm:mobile-abort")
else
    echo "$arm not measured: its Rust standard library or aarch64-linux-gnu-gcc is not installed" >&2
fi

declare -A measured
for t in "${targets[@]}"; do
    measured[$t]=$(measure "$t")
done

if [[ "${1:-}" == "--bless" ]]; then
    {
        echo "# target stripped_bytes gzip9_bytes (scripts/size.sh --bless writes this)"
        for t in "${targets[@]}"; do
            echo "$t ${measured[$t]}"
        done
    } >"$budget_file"
    for t in "${targets[@]}"; do
        read -r s g <<<"${measured[$t]}"
        echo "budget for $t: $s bytes stripped, $g gzipped"
    done
    exit 0
fi

fail=0
printf '%-42s %-10s %12s %12s %8s %12s\n' "target" "measure" "bytes" "budget" "change" "limit (+5%)"
for t in "${targets[@]}"; do
    read -r stripped gzipped <<<"${measured[$t]}"
    read -r b_stripped b_gzipped < <(awk -v t="$t" '$1 == t { print $2, $3 }' "$budget_file")
    if [[ -z "${b_stripped:-}" ]]; then
        echo "no size budget for $t in $budget_file (scripts/size.sh --bless adds one)" >&2
        fail=1
        continue
    fi
    for row in "stripped $stripped $b_stripped" "gzip-9 $gzipped $b_gzipped"; do
        read -r name now budget <<<"$row"
        limit=$((budget + budget / 20))
        change=$(awk -v n="$now" -v b="$budget" 'BEGIN { printf "%+.1f%%", (n - b) * 100 / b }')
        printf '%-42s %-10s %12d %12d %8s %12d\n' "$t" "$name" "$now" "$budget" "$change" "$limit"
        if ((now > limit)); then
            echo "$t: $name size $now is more than 5 % over the budget $budget" >&2
            fail=1
        fi
    done
    unset b_stripped b_gzipped
done
if ((fail)); then
    cat >&2 <<EOF2
The mobile library grew by more than 5 % (or a target has no budget). Find
what grew with
  CARGO_PROFILE_MOBILE_STRIP=false cargo bloat -p ocs-ffi --profile mobile --no-default-features --lib --crates
and either make it smaller or, when it is worth its bytes, run
scripts/size.sh --bless and say why in the commit.
EOF2
    exit 1
fi
