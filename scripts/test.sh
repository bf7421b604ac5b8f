#!/usr/bin/env bash
# The whole test suite: Skein's own tests (embedded and simulated, and TPC-H at SF 0.1), then the MPI backend, built with
# its trait, under mpirun with 1, 2, 3 and 4 processes, and the dead-rank check (kill -9 mid-collective).
set -euo pipefail
cd "$(dirname "$0")/.."

# TPC-H SF 0.1 for the analytics engine's tests: tpchgen-cli from PyPI, pinned, in .venv-tpch.
SKEIN_TPCH_DIR=$(scripts/tpch-data.sh 0.1)
export SKEIN_TPCH_DIR

# Tests build with -enable-testing, which leaves code unspecialized across modules: in the default
# .build that testable skein would replace the production one that `swift run -c release skein …`
# runs, and small-message benchmarks read 2× slower (8 B allreduce at p = 4: 8.8 µs against 3.8).
swift test -c release --build-path .build-tests

if ! command -v mpirun >/dev/null || ! pkg-config --exists ompi-c 2>/dev/null; then
    echo "== installing Open MPI (openmpi-bin, libopenmpi-dev)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends openmpi-bin libopenmpi-dev pkg-config
fi
echo "== building the MPI backend (swift build --traits MPI)"
swift build -c release --traits MPI --build-path .build-mpi --product skein-mpi-check
check=.build-mpi/release/skein-mpi-check

# More processes than cores is the point here; as root (containers) Open MPI wants --allow-run-as-root.
mpirun=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && mpirun+=(--allow-run-as-root)

for n in 1 2 3 4; do
    echo "== every operation and algorithm over MPI, $n processes"
    timeout 300 "${mpirun[@]}" -n "$n" "$check" check
done

for n in 2 3; do
    echo "== SQL over tables spread across $n MPI processes (random tables, TPC-H SF 0.1)"
    timeout 300 "${mpirun[@]}" -n "$n" "$check" sql "$SKEIN_TPCH_DIR"
done

for n in 2 4; do
    echo "== the task runtime over MPI, $n processes"
    timeout 300 "${mpirun[@]}" -n "$n" "$check" runtime
done
echo "== the task runtime over MPI, 2 processes, objects through the shared arena only (SKEIN_CROSS_MEMORY=0)"
timeout 300 "${mpirun[@]}" -x SKEIN_CROSS_MEMORY=0 -n 2 "$check" runtime
# As messages, the ranks move objects as between hosts: a third rank sends its object straight to the reader.
echo "== the task runtime over MPI, 3 processes, objects as messages, as between hosts (SKEIN_SHARED_ARENA=0)"
timeout 300 "${mpirun[@]}" -x SKEIN_SHARED_ARENA=0 -n 3 "$check" runtime

for n in 3 4; do
    echo "== the task runtime over MPI, $n processes, one killed with SIGKILL"
    out=$(timeout 120 "${mpirun[@]}" --enable-recovery -n "$n" "$check" runtime-dead 2>&1 || true)
    echo "$out" | grep -E "runtime over MPI|FAIL" || echo "$out" | tail -20
    grep -q "dead rank avoided" <<<"$out" || { echo "FAIL: the runtime did not recover from a dead rank"; exit 1; }
done

# A killed rank must not take the job down: --enable-recovery keeps the survivors running, and each
# must name the dead rank, shrink, and finish a correct allreduce.
echo "== dead rank: kill -9 inside a collective"
bad=0
for n in 4 3; do
    for seed in 1 2 3 4 5 6 7 8; do
        out=$(timeout 60 "${mpirun[@]}" --enable-recovery -n "$n" "$check" dead-rank "$seed" 2>&1 || true)
        ok=$(grep -c "DEADRANK OK" <<<"$out" || true)
        if [ "$ok" -ne $((n - 1)) ] || grep -q "DEADRANK BAD" <<<"$out"; then
            echo "FAIL: $n processes, seed $seed: $ok of $((n - 1)) survivors named the dead rank"
            grep -E "DEADRANK|dead-rank" <<<"$out" || echo "$out" | tail -20
            bad=1
        fi
    done
done
[ "$bad" = 0 ] && echo "dead rank: every survivor named the dead rank and recovered (16 launches)"
exit "$bad"
