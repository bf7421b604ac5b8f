#!/usr/bin/env bash
# The TPC-H toolchain in .venv-tpch: the data generator (tpchgen-cli) and, with --peers, the
# engines the benchmark compares with (DuckDB, Polars). Pinned, so generated data and the
# checked-in reference answers agree.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-tpch
want="tpchgen-cli==4.0.0"
check="import sys"
if [ "${1:-}" = "--peers" ]; then want="$want duckdb==2.0.0 polars==2.1.0"; check="import duckdb, polars"; fi
if [ -x "$venv/bin/tpchgen-cli" ] && "$venv/bin/python" -c "$check" 2>/dev/null; then exit 0; fi
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends python3-venv python3-pip
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q $want
