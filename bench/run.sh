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
#   PG_SSLMODE=          sslmode added to DATABASE_URL (e.g. disable); empty = the driver's
#                        default (prefer: TLS whenever the server offers it, as Debian's does)
#   PG_SOCKET=           a Unix-socket directory (e.g. /var/run/postgresql): Umbra then reaches
#                        Postgres through it instead of TCP 127.0.0.1:5432 (needs a trust or
#                        password rule for "local" in pg_hba.conf); empty = TCP
#   PG_SYNC_COMMIT=      synchronous_commit for the bench database only (ALTER DATABASE), e.g.
#                        off; empty = the server's setting (on). Trades durability for speed.
#   KEEP_DB=0            1 = leave the database in place on exit
#   QUIET_WAIT=0         seconds to wait, before each scenario, for other work on the machine
#                        (e.g. a compile) to use less than QUIET_CORES=0.3 cores; 0 = only warn
#   RETRY_BUSY=0         times to re-measure a scenario during which work other than Umbra,
#                        Postgres and wrk used BUSY_OTHER=0.25 cores or more (the "other" column;
#                        it is ~0.05 on a quiet machine)
#   OUT_DIR=bench/out/<timestamp>  where logs, tokens and summary.md go
#   TARGET=umbra         umbra, or ceiling: the same scenarios against the measuring stick of
#                        ../shared/bench-ceiling (a bare actix-web + SeaORM service), built into
#                        CEILING_DIR=/tmp/bench-ceiling and run with the same workers, pool and
#                        database URL; compare the two in one session and report the ratio
set -Eeuo pipefail
export LC_ALL=C
trap 'printf "\033[1;31m[bench] FAIL:\033[0m line %s: %s exited %s\n" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

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
TARGET=${TARGET:-umbra}
CEILING_DIR=${CEILING_DIR:-/tmp/bench-ceiling}
DB_NAME=${DB_NAME:-umbra_bench}
KEEP_DB=${KEEP_DB:-0}
PG_SSLMODE=${PG_SSLMODE:-}
PG_SYNC_COMMIT=${PG_SYNC_COMMIT:-}
PG_SOCKET=${PG_SOCKET:-}
QUIET_WAIT=${QUIET_WAIT:-0}
QUIET_CORES=${QUIET_CORES:-0.3}
RETRY_BUSY=${RETRY_BUSY:-0}
BUSY_OTHER=${BUSY_OTHER:-0.25}
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
OUT_DIR=${OUT_DIR:-$BENCH_DIR/out/$(date +%Y%m%d-%H%M%S)}

log() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[bench] FAIL:\033[0m %s\n' "$*" >&2; exit 1; }

[[ $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]] || die "DB_NAME must be a plain lower-case identifier"
[[ $PG_SSLMODE =~ ^(|disable|allow|prefer|require|verify-ca|verify-full)$ ]] || die "bad PG_SSLMODE"
[[ $PG_SYNC_COMMIT =~ ^(|on|off|local|remote_write|remote_apply)$ ]] || die "bad PG_SYNC_COMMIT"
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
[[ $TARGET =~ ^(umbra|ceiling)$ ]] || die "TARGET must be umbra or ceiling"
if [[ $TARGET == ceiling ]]; then
    # Built outside the workspace, as its README says; the server measured is then this one.
    if [[ $SKIP_BUILD != 1 ]]; then
        log "building the ceiling (cargo build --release in $CEILING_DIR)"
        rm -rf "$CEILING_DIR" && cp -r "$REPO/../shared/bench-ceiling" "$CEILING_DIR"
        (cd "$CEILING_DIR" && cargo build --release)
    fi
    UMBRA_BIN=$CEILING_DIR/target/release/ceiling
elif [[ $SKIP_BUILD != 1 ]]; then
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
    trap - ERR
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
if [[ -n $PG_SYNC_COMMIT ]]; then
    psql_admin -c "ALTER DATABASE $DB_NAME SET synchronous_commit = $PG_SYNC_COMMIT" >/dev/null
fi

# Umbra's configuration: environment only, run from $OUT_DIR (which has no config/ folder).
unset RUST_LOG UMBRA_ENV
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep -E '^UMBRA__' || true)
url_params=()
[[ -z $PG_SSLMODE ]] || url_params+=("sslmode=$PG_SSLMODE")
[[ -z $PG_SOCKET ]] || url_params+=("host=$PG_SOCKET" "port=$PG_PORT")
DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$DB_NAME"
if ((${#url_params[@]} > 0)); then DATABASE_URL+="?$(IFS='&'; echo "${url_params[*]}")"; fi
export DATABASE_URL
export UMBRA__SERVER__HOST=127.0.0.1
export UMBRA__SERVER__WORKERS=$UMBRA_WORKERS
export UMBRA__DATABASE__MAX_CONNECTIONS=$UMBRA_POOL
export UMBRA__DATABASE__MIN_CONNECTIONS=$UMBRA_POOL_MIN
export UMBRA__LOG__LEVEL=warn
export UMBRA__CLEANUP__INTERVAL_SECS=0
cd "$OUT_DIR"

json_field() { # json_field NAME < json   (flat string fields only)
    tr -d '\n' | grep -o "\"$1\"[[:space:]]*:[[:space:]]*\"[^\"]*\"" | head -n1 | sed 's/.*:[[:space:]]*"\(.*\)"/\1/'
}
if [[ $TARGET == ceiling ]]; then
    # The ceiling knows two clients from its environment and creates its table on start.
    SVC_ID=bench-client SVC_SECRET=bench-secret RS_ID=bench-rs RS_SECRET=bench-rs-secret
else
    "$UMBRA_BIN" migrate --json >/dev/null
    svc_json=$("$UMBRA_BIN" client create bench-service --scope read --scope write --json)
    rs_json=$("$UMBRA_BIN" client create bench-resource-server --introspect --json)
    SVC_ID=$(json_field client_id <<<"$svc_json")
    SVC_SECRET=$(json_field client_secret <<<"$svc_json")
    RS_ID=$(json_field client_id <<<"$rs_json")
    RS_SECRET=$(json_field client_secret <<<"$rs_json")
fi
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

log "starting $TARGET on $URL (workers=$UMBRA_WORKERS pool=$UMBRA_POOL min=$UMBRA_POOL_MIN sslmode=${PG_SSLMODE:-default} socket=${PG_SOCKET:-none} synchronous_commit=${PG_SYNC_COMMIT:-default})"
if [[ $TARGET == ceiling ]]; then
    workers=$UMBRA_WORKERS
    ((workers > 0)) || workers=$(nproc)
    DATABASE_URL=$DATABASE_URL BIND="127.0.0.1:$PORT" DB_POOL=$UMBRA_POOL WORKERS=$workers \
        CLIENT_ID=$SVC_ID CLIENT_SECRET=$SVC_SECRET RS_CLIENT_ID=$RS_ID RS_CLIENT_SECRET=$RS_SECRET \
        SCOPE="read write" TOKEN_TTL=3600 "$UMBRA_BIN" >"$OUT_DIR/server.log" 2>&1 &
else
    "$UMBRA_BIN" serve >"$OUT_DIR/server.log" 2>&1 &
fi
SERVER_PID=$!
# The ceiling has no health endpoint: it is ready when it refuses an unauthenticated /token.
READY_PATH=/health/ready READY_CODE=200 READY_ARGS=()
if [[ $TARGET == ceiling ]]; then
    READY_PATH=/token READY_CODE=401 READY_ARGS=(-d grant_type=client_credentials)
fi
ready=0
for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT_DIR/server.log" >&2; die "$TARGET exited during startup"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "${READY_ARGS[@]}" "$URL$READY_PATH" || true)
    if [[ $code == "$READY_CODE" ]]; then ready=1; break; fi
    sleep 0.1
done
[[ $ready == 1 ]] || die "$URL$READY_PATH did not answer $READY_CODE within 30 s"

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
pg_ticks() { # CPU ticks of every running postgres process (backends live as long as the pool)
    local pids
    pids=$(pgrep -x postgres | sed 's|.*|/proc/&/stat|' || true)
    # shellcheck disable=SC2086
    [[ -z $pids ]] && { echo 0; return; }
    # A backend (autovacuum, say) may exit between pgrep and cat: ignore the missing file.
    { cat $pids 2>/dev/null || true; } | awk '{ s += $14 + $15 } END { print s + 0 }'
}
sys_busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- (e) tokens
TOKENS_FILE=$OUT_DIR/tokens.txt
export TOKENS TOKENS_FILE VERIFY_BODIES
: >"$TOKENS_FILE"
log "issuing $TOKENS access tokens"
set_phase issue
# wrk only stops at the end of -d, so it is interrupted (SIGINT) as soon as the file is full.
wrk -t1 -c8 -d60s -s "$BENCH_DIR/issue_tokens.lua" "$URL" >"$OUT_DIR/issue.log" 2>&1 &
WRK_PID=$!
while kill -0 "$WRK_PID" 2>/dev/null; do
    have=$(grep -c . "$TOKENS_FILE" || true)
    if ((have >= TOKENS)); then kill -INT "$WRK_PID" 2>/dev/null || true; break; fi
    sleep 0.1
done
wait "$WRK_PID" || { cat "$OUT_DIR/issue.log" >&2; die "token issuance failed"; }
have=$(grep -c . "$TOKENS_FILE" || true)
((have >= TOKENS)) || { cat "$OUT_DIR/issue.log" >&2; die "only $have of $TOKENS tokens were issued"; }
head -n "$TOKENS" "$TOKENS_FILE" >"$TOKENS_FILE.tmp" && mv "$TOKENS_FILE.tmp" "$TOKENS_FILE"
log "issued $TOKENS tokens"

# Sanity: a few tokens are active, and /token answers with a token.
for token in $(shuf -n 5 "$TOKENS_FILE"); do
    body=$(curl -s --max-time 5 -u "$RS_ID:$RS_SECRET" -d "token=$token" "$URL/introspect")
    [[ $body == *'"active":true'* ]] || die "introspection of an issued token said: $body"
done
body=$(curl -s --max-time 5 -u "$SVC_ID:$SVC_SECRET" -d grant_type=client_credentials "$URL/token")
[[ $body == *'"access_token":"'* ]] || die "POST /token said: $body"

# ---------------------------------------------------------------- (f, g) load
BUSY_NOTES=()
wait_quiet() { # wait_quiet TAG: wait up to QUIET_WAIT s for the machine to be idle (server idle too)
    local waited=0 s0 s1 busy
    while :; do
        s0=$(sys_busy_ticks); sleep 1; s1=$(sys_busy_ticks)
        busy=$(awk -v d="$((s1 - s0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz }')
        if awk -v b="$busy" -v q="$QUIET_CORES" 'BEGIN { exit !(b < q) }'; then
            ((waited == 0)) || log "machine quiet after ${waited}s"
            return
        fi
        if ((waited >= QUIET_WAIT)); then
            log "WARNING: $busy cores busy with other work before $1; its figures are pessimistic"
            BUSY_NOTES+=("$1: $busy cores busy with other work just before the run")
            return
        fi
        ((waited == 0)) && log "machine busy ($busy cores); waiting up to ${QUIET_WAIT}s"
        waited=$((waited + 1))
    done
}

RESULTS=()  # "scenario conns rps p50 p99 non2xx sockerr bad peak_mib umbra_cpu pg_cpu wrk_cpu sys_cpu"
FAILURES=()
run_scenario() { # run_scenario NAME SCRIPT CONNS
    local name=$1 script=$2 conns=$3 threads=$WRK_THREADS
    ((threads <= conns)) || threads=$conns
    local tag="$name-c$conns" attempt
    for attempt in $(seq 1 $((RETRY_BUSY + 1))); do
        measure "$name" "$script" "$conns" "$threads" "$tag"
        # Work other than Umbra, Postgres and wrk (a compile, say) steals cores mid-run: retry.
        if awk -v o="$LAST_OTHER" -v q="$BUSY_OTHER" 'BEGIN { exit !(o >= q) }'; then
            if ((attempt <= RETRY_BUSY)); then
                log "other work used $LAST_OTHER cores during $tag; measuring it again"
                continue
            fi
            BUSY_NOTES+=("$tag: other work used $LAST_OTHER cores during the run; its figures are pessimistic")
        fi
        break
    done
    record_last
}

measure() { # measure NAME SCRIPT CONNS THREADS TAG: one warm-up and one measured wrk run
    local name=$1 script=$2 conns=$3 threads=$4 tag=$5
    wait_quiet "$tag"
    if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
        set_phase "warmup-$tag"
        timeout 300 wrk -t"$threads" -c"$conns" -d"$WARMUP" -s "$BENCH_DIR/$script" "$URL" \
            >"$OUT_DIR/warmup-$tag.log" 2>&1 || die "wrk warm-up for $tag failed"
    fi
    log "measuring $name, $conns connections, $DURATION"
    set_phase "$tag"
    local t0 c0 p0 s0 t1 c1 p1 s1 TIMEFORMAT='%U %S'
    t0=$(date +%s%N); c0=$(cpu_ticks); p0=$(pg_ticks); s0=$(sys_busy_ticks)
    { time timeout 900 wrk -t"$threads" -c"$conns" -d"$DURATION" --timeout 5s --latency \
        -s "$BENCH_DIR/$script" "$URL" >"$OUT_DIR/$tag.log" 2>&1; } 2>"$OUT_DIR/$tag.time" \
        || { cat "$OUT_DIR/$tag.log" >&2; die "wrk for $tag failed"; }
    t1=$(date +%s%N); c1=$(cpu_ticks); p1=$(pg_ticks); s1=$(sys_busy_ticks)
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
    # CPU used during the run, in cores: Umbra, Postgres, wrk, and the whole machine.
    local secs cpu pgcpu wrkcpu syscpu
    secs=$(awk -v ns="$((t1 - t0))" 'BEGIN { print ns / 1e9 }')
    cpu=$(awk -v d="$((c1 - c0))" -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.2f", d / hz / s }')
    pgcpu=$(awk -v d="$((p1 - p0))" -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.2f", d / hz / s }')
    syscpu=$(awk -v d="$((s1 - s0))" -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.2f", d / hz / s }')
    wrkcpu=$(awk -v s="$secs" '{ printf "%.2f", ($1 + $2) / s }' "$OUT_DIR/$tag.time")
    LAST_OTHER=$(awk -v a="$syscpu" -v u="$cpu" -v p="$pgcpu" -v w="$wrkcpu" \
        'BEGIN { o = a - u - p - w; printf "%.2f", (o < 0 ? 0 : o) }')
    LAST_ROW="$name $conns ${m[rps]} ${m[p50_ms]} ${m[p99_ms]} ${m[non2xx]} $sockerr ${m[bad_bodies]} $peak $cpu $pgcpu $wrkcpu $LAST_OTHER"
    LAST_FAILURES=()
    if ((m[non2xx] > 0)); then LAST_FAILURES+=("$tag: ${m[non2xx]} non-2xx responses"); fi
    if ((sockerr > 0)); then LAST_FAILURES+=("$tag: $sockerr socket errors (connect ${m[connect_err]}, read ${m[read_err]}, write ${m[write_err]}, timeout ${m[timeout_err]})"); fi
    if ((m[bad_bodies] > 0)); then LAST_FAILURES+=("$tag: ${m[bad_bodies]} bodies failed the check"); fi
    if ((m[requests] == 0)); then LAST_FAILURES+=("$tag: no requests completed"); fi
    return 0
}

record_last() {
    RESULTS+=("$LAST_ROW")
    FAILURES+=("${LAST_FAILURES[@]}")
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
    echo "$TARGET benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ), HEAD $GIT_REV, binary $UMBRA_BIN built $(date -u -r "$UMBRA_BIN" +%Y-%m-%dT%H:%M:%SZ)"
    echo "config: workers=$UMBRA_WORKERS pool=$UMBRA_POOL pool_min=$UMBRA_POOL_MIN sslmode=${PG_SSLMODE:-default} socket=${PG_SOCKET:-none} synchronous_commit=${PG_SYNC_COMMIT:-default} wrk_threads=$WRK_THREADS duration=$DURATION warmup=$WARMUP tokens=$TOKENS verify_bodies=$VERIFY_BODIES"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Postgres $PG_VERSION"
    echo
    echo "| scenario | conns | req/s | p50 ms | p99 ms | non-2xx | sock err | peak RSS MiB | CPU cores: server / postgres / wrk / other |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for r in "${RESULTS[@]}"; do
        read -r name conns rps p50 p99 non2xx sockerr bad peak cpu pgcpu wrkcpu other <<<"$r"
        printf '| %s | %s | %.0f | %.2f | %.2f | %s | %s | %s | %s / %s / %s / %s |\n' \
            "$name" "$conns" "$rps" "$p50" "$p99" "$non2xx" "$sockerr" "$peak" \
            "$cpu" "$pgcpu" "$wrkcpu" "$other"
    done
    echo
    PEAK_MIB=$(awk -v a="$HWM_MIB" -v b="$SAMPLED_MIB" 'BEGIN { printf "%.1f", (a > b ? a : b) }')
    echo "server peak RSS: $PEAK_MIB MiB (VmHWM at end $HWM_MIB MiB, highest sampled VmRSS $SAMPLED_MIB MiB); threads at end: $THREADS_NOW"
    for n in "${BUSY_NOTES[@]}"; do echo "note: $n"; done
} | tee "$OUT_DIR/summary.md"

if ((${#FAILURES[@]} > 0)); then
    for f in "${FAILURES[@]}"; do printf '\033[1;31m[bench] FAIL:\033[0m %s\n' "$f" >&2; done
    exit 1
fi
log "all responses were 2xx; logs in $OUT_DIR"
