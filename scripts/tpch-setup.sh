#!/usr/bin/env bash
# The TPC-H toolchain in .venv-tpch: the data generator (tpchgen-cli), and the peers the benchmark
# compares with (DuckDB, Polars). Pinned, so that generated data and reference answers agree.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-tpch
want="tpchgen-cli==4.0.0 duckdb==2.0.0 polars==2.1.0"
if [ -x "$venv/bin/tpchgen-cli" ] && "$venv/bin/python" -c "import duckdb, polars" 2>/dev/null; then exit 0; fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" 2>/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends python3-venv python3-pip
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -q $want
