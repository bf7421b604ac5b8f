#!/usr/bin/env bash
# Ray's own microbenchmark (`ray microbenchmark`), for comparison with `skein bench tasks`:
# installs ray[default] (the core-only install lacks grpcio, which the benchmark imports) into a
# virtual environment in .venv-ray, then runs both so they print one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-ray/bin/ray ]; then
    python3 -m venv .venv-ray
    .venv-ray/bin/pip install -q "ray[default]" numpy   # ray_perf imports numpy too
fi
echo "== Ray $(.venv-ray/bin/python -c 'import ray; print(ray.__version__)')"
.venv-ray/bin/ray microbenchmark 2>&1 | grep -E "per second|per s|tasks|actor|put|get|ms" || true
echo "== Skein"
swift run -c release skein bench tasks
