#!/usr/bin/env bash
# Generates TPC-H data at scale factor SF into .build/tpch/sfSF (reused when already there) and
# prints the directory. Usage: scripts/tpch-data.sh SF
set -euo pipefail
cd "$(dirname "$0")/.."
sf=${1:?scale factor}
dir=.build/tpch/sf$sf
if [ ! -f "$dir/.complete" ]; then
    scripts/tpch-setup.sh >&2
    rm -rf "$dir" && mkdir -p "$dir"
    echo "== generating TPC-H SF $sf into $dir" >&2
    .venv-tpch/bin/tpchgen-cli tbl -s "$sf" --output-dir "$dir" >&2
    touch "$dir/.complete"
fi
echo "$PWD/$dir"
