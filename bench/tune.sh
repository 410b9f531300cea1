#!/usr/bin/env bash
# Runs bench/run.sh once per configuration and collects the summaries in one file.
#   VARIANTS="workers:pool:pool_min[:sslmode[:synchronous_commit[:socket_dir]]] ..."  (default below; an
#   empty or "-" field keeps run.sh's default). Every other run.sh variable passes through
#   (DURATION, WARMUP, TOKENS, WRK_THREADS, QUIET_WAIT, RETRY_BUSY, ...). Builds once, first.
#   TARGET defaults to umbra here (one round, no Umbra-only extras unless EXTRAS=1): tuning
#   compares configurations of one server, not the server with the ceiling.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VARIANTS=${VARIANTS:-"0:16:1 2:4:1 2:8:1 2:32:1 1:8:1 1:16:1 2:8:8 2:8:1:disable 1:8:1:disable"}
export TARGET=${TARGET:-umbra} ROUNDS=${ROUNDS:-1} EXTRAS=${EXTRAS:-0}
TUNE_DIR=${TUNE_DIR:-$BENCH_DIR/out/tune-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$TUNE_DIR"
if [[ ${SKIP_BUILD:-0} != 1 ]]; then (cd "$BENCH_DIR/.." && cargo build --release -p umbra-server); fi
status=0
for v in $VARIANTS; do
    IFS=: read -r workers pool pool_min sslmode sync socket <<<"$v"
    [[ $sslmode == - ]] && sslmode=
    [[ $sync == - ]] && sync=
    name="w${workers}-p${pool}-min${pool_min}${sslmode:+-ssl_$sslmode}${sync:+-sync_$sync}${socket:+-unix}"
    out="$TUNE_DIR/$name"
    echo "=== $name ===" | tee -a "$TUNE_DIR/all.md"
    if SKIP_BUILD=1 UMBRA_WORKERS=$workers UMBRA_POOL=$pool UMBRA_POOL_MIN=$pool_min \
        PG_SSLMODE=$sslmode PG_SYNC_COMMIT=$sync PG_SOCKET=$socket OUT_DIR=$out \
        "$BENCH_DIR/run.sh" >"$out.log" 2>&1; then
        :
    else
        status=1
        echo "(run failed: see $out.log)" | tee -a "$TUNE_DIR/all.md"
    fi
    if [[ -f $out/summary.md ]]; then tee -a "$TUNE_DIR/all.md" <"$out/summary.md"; fi
    echo | tee -a "$TUNE_DIR/all.md"
done
echo "all summaries: $TUNE_DIR/all.md"
exit "$status"
