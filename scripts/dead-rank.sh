#!/usr/bin/env bash
# kill -9 one rank at a random point inside a collective, once per launch, LAUNCHES times, and count
# the survivors that returned Skein's error naming the dead rank within 1 s after the call's 3 s deadline.
# usage: scripts/dead-rank.sh [LAUNCHES=100] [PROCESSES=4] [FIRST_SEED=1]   (needs the MPI build)
set -uo pipefail
cd "$(dirname "$0")/.."
launches=${1:-100}; n=${2:-4}; first=${3:-1}
check=.build-mpi/release/skein-mpi-check
[ -x "$check" ] || swift build -c release --traits MPI --build-path .build-mpi --product skein-mpi-check
mpirun=(mpirun --oversubscribe --enable-recovery)
[ "$(id -u)" = 0 ] && mpirun+=(--allow-run-as-root)
ok=0; bad=0; worst=0; ops=""
for ((seed = first; seed < first + launches; seed++)); do
    out=$(timeout 60 "${mpirun[@]}" -n "$n" "$check" dead-rank "$seed" 2>&1)
    o=$(grep -c "DEADRANK OK" <<<"$out"); b=$(grep -c "DEADRANK BAD" <<<"$out")
    ok=$((ok + o)); bad=$((bad + b))
    ops+=$(grep -o "loop of [a-z-]* of [0-9]* B" <<<"$out" | head -1 | awk '{print $3}')$'\n'
    for t in $(grep "DEADRANK OK" <<<"$out" | grep -o "in [0-9.]* s" | awk '{print $2}'); do
        worst=$(awk -v a="$worst" -v b="$t" 'BEGIN { print (b > a ? b : a) }')
    done
    if [ "$o" -ne $((n - 1)) ] || [ "$b" -ne 0 ]; then
        echo "seed $seed: $o of $((n - 1)) survivors OK"
        grep -E "DEADRANK|dead-rank" <<<"$out"
    fi
done
echo "operations killed in: $(sort <<<"$ops" | grep . | uniq -c | awk '{printf "%s %s, ", $2, $1}')"
echo "$launches kills, $n processes: $ok of $((launches * (n - 1))) survivors named the dead rank and recovered; $bad failures; slowest survivor's failing call took ${worst} s (deadline 3 s)"
[ "$bad" = 0 ] && [ "$ok" = $((launches * (n - 1))) ]
