#!/usr/bin/env bash
# Umbra load benchmark: builds the release binary, starts Umbra on a fresh Postgres database,
# issues tokens, then drives /introspect and /token (client_credentials) with wrk and prints a
# summary table. Every load goes to 127.0.0.1 only and every wrk run is bounded in time.
#
# Environment (all optional):
#   TOKENS=1000          tokens issued before the introspection runs
#   DURATION=10s         length of each measured wrk run
#   WARMUP=2s            unmeasured wrk run before each measured one (0 disables it)
#   CONNECTIONS="32 128" connection counts to measure
#   WRK_THREADS=1        wrk threads (wrk shares the machine's cores with Umbra and Postgres)
#   UMBRA_WORKERS=0      actix worker threads (0 = one per core)
#   UMBRA_POOL=16        database pool size (max_connections)
#   UMBRA_POOL_MIN=1     database pool minimum
#   VERIFY_BODIES=0      1 = wrk also checks every body (active:true / access_token); costs client CPU
#   SKIP_BUILD=0         1 = use the existing binary
#   UMBRA_BIN=<repo>/target/release/umbra
#   DB_NAME=umbra_bench  the database created and dropped by this script
#   KEEP_DB=0            1 = leave the database in place on exit
#   OUT_DIR=bench/out/<timestamp>  where logs, tokens and summary.md go
set -euo pipefail
export LC_ALL=C

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

TOKENS=${TOKENS:-1000}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-"32 128"}
WRK_THREADS=${WRK_THREADS:-1}
UMBRA_WORKERS=${UMBRA_WORKERS:-0}
UMBRA_POOL=${UMBRA_POOL:-16}
UMBRA_POOL_MIN=${UMBRA_POOL_MIN:-1}
VERIFY_BODIES=${VERIFY_BODIES:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
UMBRA_BIN=${UMBRA_BIN:-$REPO/target/release/umbra}
DB_NAME=${DB_NAME:-umbra_bench}
KEEP_DB=${KEEP_DB:-0}
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out/$(date +%Y%m%d-%H%M%S)}

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[bench] FAIL:\033[0m %s\n' "$*" >&2; exit 1; }

[[ $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]] || die "DB_NAME must be a plain lower-case identifier"
for v in TOKENS WRK_THREADS UMBRA_WORKERS UMBRA_POOL UMBRA_POOL_MIN; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer"
done

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
log "output directory: $OUT_DIR"

# ---------------------------------------------------------------- (a) tools
install_pkgs() {
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    log "installing $* with apt"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null
}
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
command -v psql >/dev/null || missing+=(postgresql-client)
[[ ${#missing[@]} -eq 0 ]] || install_pkgs "${missing[@]}"

# ---------------------------------------------------------------- (b) build
if [[ $SKIP_BUILD != 1 ]]; then
    log "building release binary (cargo build --release -p umbra-server)"
    (cd "$REPO" && cargo build --release -p umbra-server)
fi
[[ -x $UMBRA_BIN ]] || die "no binary at $UMBRA_BIN"

# ---------------------------------------------------------------- (c) database
psql_admin() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres "$@"
}
if ! psql_admin -Atc 'select 1' >/dev/null 2>&1; then
    log "Postgres is down; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
    for _ in $(seq 1 30); do
        psql_admin -Atc 'select 1' >/dev/null 2>&1 && break
        sleep 1
    done
    psql_admin -Atc 'select 1' >/dev/null || die "Postgres did not come up"
fi
PG_VERSION=$(psql_admin -Atc 'show server_version')

SERVER_PID=
SAMPLER_PID=
DB_CREATED=0
cleanup() {
    local rc=$?
    set +e
    if [[ -n $SAMPLER_PID ]]; then kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; fi
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if [[ $DB_CREATED == 1 && $KEEP_DB != 1 ]]; then
        psql_admin -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 \
            || log "could not drop database $DB_NAME"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "creating database $DB_NAME (Postgres $PG_VERSION)"
psql_admin -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null
psql_admin -c "CREATE DATABASE $DB_NAME" >/dev/null
DB_CREATED=1

# Umbra's configuration: environment only, run from $OUT_DIR (which has no config/ folder).
unset RUST_LOG UMBRA_ENV
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep -E '^UMBRA__' || true)
export DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$DB_NAME"
export UMBRA__SERVER__HOST=127.0.0.1
export UMBRA__SERVER__WORKERS=$UMBRA_WORKERS
export UMBRA__DATABASE__MAX_CONNECTIONS=$UMBRA_POOL
export UMBRA__DATABASE__MIN_CONNECTIONS=$UMBRA_POOL_MIN
export UMBRA__LOG__LEVEL=warn
export UMBRA__CLEANUP__INTERVAL_SECS=0
cd "$OUT_DIR"

"$UMBRA_BIN" migrate --json >/dev/null
json_field() { # json_field NAME < json   (flat string fields only)
    tr -d '\n' | grep -o "\"$1\"[[:space:]]*:[[:space:]]*\"[^\"]*\"" | head -n1 | sed 's/.*:[[:space:]]*"\(.*\)"/\1/'
}
svc_json=$("$UMBRA_BIN" client create bench-service --scope read --scope write --json)
rs_json=$("$UMBRA_BIN" client create bench-resource-server --introspect --json)
SVC_ID=$(json_field client_id <<<"$svc_json")
SVC_SECRET=$(json_field client_secret <<<"$svc_json")
RS_ID=$(json_field client_id <<<"$rs_json")
RS_SECRET=$(json_field client_secret <<<"$rs_json")
[[ -n $SVC_ID && -n $SVC_SECRET && -n $RS_ID && -n $RS_SECRET ]] || die "could not read client credentials"
# client_secret_basic: base64(urlencode(id) ":" urlencode(secret)); the ids and secrets Umbra
# generates are made of unreserved characters, so no encoding is needed.
export TOKEN_AUTH INTROSPECT_AUTH
TOKEN_AUTH=$(printf '%s:%s' "$SVC_ID" "$SVC_SECRET" | base64 -w0)
INTROSPECT_AUTH=$(printf '%s:%s' "$RS_ID" "$RS_SECRET" | base64 -w0)

# ---------------------------------------------------------------- (d) server
port_free() { [[ -z $(ss -Htln "sport = :$1" 2>/dev/null) ]]; }
PORT=${PORT:-}
if [[ -z $PORT ]]; then
    for p in $(shuf -i 20000-40000 -n 100); do
        if port_free "$p"; then PORT=$p; break; fi
    done
fi
[[ -n $PORT ]] || die "no free port found"
export UMBRA__SERVER__PORT=$PORT
export UMBRA__SERVER__ISSUER="http://127.0.0.1:$PORT"
URL="http://127.0.0.1:$PORT"

log "starting umbra on $URL (workers=$UMBRA_WORKERS pool=$UMBRA_POOL min=$UMBRA_POOL_MIN)"
"$UMBRA_BIN" serve >"$OUT_DIR/server.log" 2>&1 &
SERVER_PID=$!
ready=0
for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT_DIR/server.log" >&2; die "umbra exited during startup"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$URL/health/ready" || true)
    if [[ $code == 200 ]]; then ready=1; break; fi
    sleep 0.1
done
[[ $ready == 1 ]] || die "GET /health/ready did not answer 200 within 30 s"

# ---------------------------------------------------------------- (h) RSS sampler
# Writes "<phase> <VmRSS kB>" every 0.2 s; the phase is read from $PHASE_FILE.
PHASE_FILE=$OUT_DIR/phase
RSS_LOG=$OUT_DIR/rss.log
echo idle >"$PHASE_FILE"
: >"$RSS_LOG"
(
    while [[ -r /proc/$SERVER_PID/status ]]; do
        phase=$(<"$PHASE_FILE")
        while read -r key value _; do
            if [[ $key == VmRSS: ]]; then echo "$phase $value" >>"$RSS_LOG"; break; fi
        done <"/proc/$SERVER_PID/status"
        sleep 0.2
    done
) &
SAMPLER_PID=$!
set_phase() { echo "$1" >"$PHASE_FILE"; }
peak_rss_kb() { awk -v p="$1" '$1 == p && $2 > m { m = $2 } END { print m + 0 }' "$RSS_LOG"; }
proc_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER_PID/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- (e) tokens
TOKENS_FILE=$OUT_DIR/tokens.txt
export TOKENS TOKENS_FILE VERIFY_BODIES
: >"$TOKENS_FILE"
log "issuing $TOKENS access tokens"
set_phase issue
timeout 120 wrk -t1 -c8 -d60s -s "$BENCH_DIR/issue_tokens.lua" "$URL" >"$OUT_DIR/issue.log" 2>&1 \
    || { cat "$OUT_DIR/issue.log" >&2; die "token issuance failed"; }
have=$(grep -c '^at_' "$TOKENS_FILE" || true)
((have >= TOKENS)) || { cat "$OUT_DIR/issue.log" >&2; die "only $have of $TOKENS tokens were issued"; }
head -n "$TOKENS" "$TOKENS_FILE" >"$TOKENS_FILE.tmp" && mv "$TOKENS_FILE.tmp" "$TOKENS_FILE"
log "issued $TOKENS tokens"

# Sanity: a few tokens are active, and /token answers with a token.
for token in $(shuf -n 5 "$TOKENS_FILE"); do
    body=$(curl -s --max-time 5 -u "$RS_ID:$RS_SECRET" -d "token=$token" "$URL/introspect")
    [[ $body == *'"active":true'* ]] || die "introspection of an issued token said: $body"
done
body=$(curl -s --max-time 5 -u "$SVC_ID:$SVC_SECRET" -d grant_type=client_credentials "$URL/token")
[[ $body == *'"access_token":"at_'* ]] || die "POST /token said: $body"

# ---------------------------------------------------------------- (f, g) load
RESULTS=()  # "scenario conns rps p50 p99 non2xx sockerr bad peak_mib cpu"
FAILURES=()
run_scenario() { # run_scenario NAME SCRIPT CONNS
    local name=$1 script=$2 conns=$3 threads=$WRK_THREADS
    ((threads <= conns)) || threads=$conns
    local tag="$name-c$conns"
    if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
        set_phase "warmup-$tag"
        timeout 300 wrk -t"$threads" -c"$conns" -d"$WARMUP" -s "$BENCH_DIR/$script" "$URL" \
            >"$OUT_DIR/warmup-$tag.log" 2>&1 || die "wrk warm-up for $tag failed"
    fi
    log "measuring $name, $conns connections, $DURATION"
    set_phase "$tag"
    local t0 c0 t1 c1
    t0=$(date +%s%N); c0=$(cpu_ticks)
    timeout 900 wrk -t"$threads" -c"$conns" -d"$DURATION" --timeout 5s --latency \
        -s "$BENCH_DIR/$script" "$URL" >"$OUT_DIR/$tag.log" 2>&1 \
        || { cat "$OUT_DIR/$tag.log" >&2; die "wrk for $tag failed"; }
    t1=$(date +%s%N); c1=$(cpu_ticks)
    set_phase idle
    sed 's/^/    /' "$OUT_DIR/$tag.log" | grep -v '^    BENCH' >&2
    local line
    line=$(grep '^BENCH ' "$OUT_DIR/$tag.log") || die "no BENCH line in $OUT_DIR/$tag.log"
    local -A m=()
    local kv
    for kv in ${line#BENCH }; do m[${kv%%=*}]=${kv#*=}; done
    local sockerr=$((m[connect_err] + m[read_err] + m[write_err] + m[timeout_err]))
    local peak cpu
    peak=$(awk -v kb="$(peak_rss_kb "$tag")" 'BEGIN { printf "%.1f", kb / 1024 }')
    cpu=$(awk -v d="$((c1 - c0))" -v hz="$CLK_TCK" -v ns="$((t1 - t0))" \
        'BEGIN { printf "%.2f", (d / hz) / (ns / 1e9) }')
    RESULTS+=("$name $conns ${m[rps]} ${m[p50_ms]} ${m[p99_ms]} ${m[non2xx]} $sockerr ${m[bad_bodies]} $peak $cpu")
    if ((m[non2xx] > 0)); then FAILURES+=("$tag: ${m[non2xx]} non-2xx responses"); fi
    if ((sockerr > 0)); then FAILURES+=("$tag: $sockerr socket errors (connect ${m[connect_err]}, read ${m[read_err]}, write ${m[write_err]}, timeout ${m[timeout_err]})"); fi
    if ((m[bad_bodies] > 0)); then FAILURES+=("$tag: ${m[bad_bodies]} bodies failed the check"); fi
    if ((m[requests] == 0)); then FAILURES+=("$tag: no requests completed"); fi
}

for c in $CONNECTIONS; do run_scenario introspect introspect.lua "$c"; done
for c in $CONNECTIONS; do run_scenario client_credentials token.lua "$c"; done

# ---------------------------------------------------------------- (h, i) summary
set_phase done
HWM_KB=$(proc_kb VmHWM)
HWM_MIB=$(awk -v kb="$HWM_KB" 'BEGIN { printf "%.1f", kb / 1024 }')
SAMPLED_MIB=$(awk '$2 > m { m = $2 } END { printf "%.1f", m / 1024 }' "$RSS_LOG")
THREADS_NOW=$(proc_kb Threads)
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$REPO" diff-index --quiet HEAD -- server 2>/dev/null; then GIT_REV="$GIT_REV+dirty(server/)"; fi

{
    echo "Umbra benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $GIT_REV"
    echo "config: workers=$UMBRA_WORKERS pool=$UMBRA_POOL pool_min=$UMBRA_POOL_MIN wrk_threads=$WRK_THREADS duration=$DURATION warmup=$WARMUP tokens=$TOKENS verify_bodies=$VERIFY_BODIES"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Postgres $PG_VERSION"
    echo
    echo "| scenario | conns | req/s | p50 ms | p99 ms | non-2xx | sock err | peak RSS MiB | umbra CPU (cores) |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for r in "${RESULTS[@]}"; do
        read -r name conns rps p50 p99 non2xx sockerr bad peak cpu <<<"$r"
        printf '| %s | %s | %.0f | %.2f | %.2f | %s | %s | %s | %s |\n' \
            "$name" "$conns" "$rps" "$p50" "$p99" "$non2xx" "$sockerr" "$peak" "$cpu"
    done
    echo
    echo "server peak RSS: VmHWM $HWM_MIB MiB (highest sampled VmRSS $SAMPLED_MIB MiB); threads at end: $THREADS_NOW"
} | tee "$OUT_DIR/summary.md"

if ((${#FAILURES[@]} > 0)); then
    for f in "${FAILURES[@]}"; do printf '\033[1;31m[bench] FAIL:\033[0m %s\n' "$f" >&2; done
    exit 1
fi
log "all responses were 2xx; logs in $OUT_DIR"
