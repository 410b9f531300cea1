#!/usr/bin/env bash
# Umbra load benchmark, side by side with the ceiling (../shared/bench-ceiling, a bare actix-web
# + SeaORM service) on the same Postgres with the same wrk scripts: ROUNDS interleaved rounds,
# one server at a time, then a table of medians with each figure's ratio to the ceiling and the
# target it is held to. Umbra-only scenarios besides: introspection with the cache off, a
# revocation mix checked for stale answers, RSS with a full cache, and the delay until a
# revocation made at one instance reaches a second one. Every load goes to 127.0.0.1 only and
# every wrk run is bounded in time. See bench/README.md for what each figure means.
#
# Environment (all optional):
#   TARGET=both          both (Umbra and the ceiling, interleaved), umbra, or ceiling
#   ROUNDS=3             rounds; each runs every scenario of each target once (the order of the
#                        targets alternates from round to round)
#   TOKENS=10000         the pool of tokens introspected (issued once per target)
#   DURATION=10s         length of each measured wrk run
#   WARMUP=2s            unmeasured wrk run before each measured one (0 disables it)
#   CONNECTIONS="32 128" connection counts of the introspection and client_credentials runs
#   EXTRAS=1             0 = skip the Umbra-only scenarios below
#   NOCACHE_CONNECTIONS=32  introspection with UMBRA__INTROSPECTION__CACHE_ENABLED=false
#   REVMIX_CONNECTIONS=32   the revocation mix (revmix.lua): 1 request in REVOKE_EVERY=100 is a
#                        POST /revoke of a pool token; meanwhile CHECK_THREADS=2 threads of
#                        probe.py check that a revoked token is inactive at once
#   RSS_TOKENS=100000    tokens issued and introspected once each before RSS is read (0 skips)
#   DELAY_TRIALS=200     trials of the cross-instance revocation delay (0 skips)
#   CACHE_CAPACITY=      UMBRA__INTROSPECTION__CACHE_CAPACITY; empty = Umbra's default
#   WRK_THREADS=1        wrk threads (wrk shares the machine's cores with Umbra and Postgres)
#   UMBRA_WORKERS=0      actix worker threads (0 = one per core)
#   UMBRA_POOL=16        database pool size (max_connections)
#   UMBRA_POOL_MIN=1     database pool minimum
#   VERIFY_BODIES=0      1 = wrk also checks every body (active:true / access_token); costs client CPU
#   SKIP_BUILD=0         1 = use the existing binaries
#   UMBRA_BIN=${CARGO_TARGET_DIR:-<repo>/target}/release/umbra
#   DB_NAME=umbra_bench  the databases created and dropped by this script (the ceiling's gets
#                        the suffix _ceiling)
#   PG_SSLMODE=          sslmode added to DATABASE_URL (e.g. disable); empty = the driver's
#                        default (prefer: TLS whenever the server offers it, as Debian's does)
#   PG_SOCKET=           a Unix-socket directory (e.g. /var/run/postgresql): the servers then
#                        reach Postgres through it instead of TCP 127.0.0.1:5432 (needs a trust or
#                        password rule for "local" in pg_hba.conf); empty = TCP
#   PG_SYNC_COMMIT=      synchronous_commit for the bench databases only (ALTER DATABASE), e.g.
#                        off; empty = the server's setting (on). Trades durability for speed.
#   KEEP_DB=0            1 = leave the databases in place on exit
#   QUIET_WAIT=0         seconds to wait, before each scenario, for other work on the machine
#                        (e.g. a compile) to use less than QUIET_CORES=0.3 cores; 0 = only warn
#   RETRY_BUSY=0         times to re-measure a scenario during which work other than the server,
#                        Postgres and wrk used BUSY_OTHER=0.25 cores or more (the "other" column;
#                        it is ~0.05 on a quiet machine)
#   OUT_DIR=bench/out/<timestamp>  where logs, tokens, results.tsv and summary.md go
#   CEILING_DIR=/tmp/bench-ceiling  where the ceiling is copied and built (outside the workspace)
set -Eeuo pipefail
export LC_ALL=C
trap 'printf "\033[1;31m[bench] FAIL:\033[0m line %s: %s exited %s\n" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

TARGET=${TARGET:-both}
ROUNDS=${ROUNDS:-3}
TOKENS=${TOKENS:-10000}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-"32 128"}
EXTRAS=${EXTRAS:-1}
NOCACHE_CONNECTIONS=${NOCACHE_CONNECTIONS:-32}
REVMIX_CONNECTIONS=${REVMIX_CONNECTIONS:-32}
REVOKE_EVERY=${REVOKE_EVERY:-100}
CHECK_THREADS=${CHECK_THREADS:-2}
RSS_TOKENS=${RSS_TOKENS:-100000}
DELAY_TRIALS=${DELAY_TRIALS:-200}
CACHE_CAPACITY=${CACHE_CAPACITY:-}
WRK_THREADS=${WRK_THREADS:-1}
UMBRA_WORKERS=${UMBRA_WORKERS:-0}
UMBRA_POOL=${UMBRA_POOL:-16}
UMBRA_POOL_MIN=${UMBRA_POOL_MIN:-1}
VERIFY_BODIES=${VERIFY_BODIES:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
UMBRA_BIN=${UMBRA_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/umbra}
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

[[ $TARGET =~ ^(both|umbra|ceiling)$ ]] || die "TARGET must be both, umbra or ceiling"
[[ $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]] || die "DB_NAME must be a plain lower-case identifier"
[[ $PG_SSLMODE =~ ^(|disable|allow|prefer|require|verify-ca|verify-full)$ ]] || die "bad PG_SSLMODE"
[[ $PG_SYNC_COMMIT =~ ^(|on|off|local|remote_write|remote_apply)$ ]] || die "bad PG_SYNC_COMMIT"
for v in ROUNDS TOKENS WRK_THREADS UMBRA_WORKERS UMBRA_POOL UMBRA_POOL_MIN EXTRAS REVOKE_EVERY \
    CHECK_THREADS RSS_TOKENS DELAY_TRIALS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer"
done
[[ -z $CACHE_CAPACITY || $CACHE_CAPACITY =~ ^[0-9]+$ ]] || die "CACHE_CAPACITY must be an integer"
((ROUNDS > 0 && TOKENS > 0 && REVOKE_EVERY > 0)) || die "ROUNDS, TOKENS and REVOKE_EVERY must be positive"
TARGETS=(umbra ceiling)
[[ $TARGET == both ]] || TARGETS=("$TARGET")
has_target() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
# The Umbra-only scenarios need Umbra.
has_target umbra || EXTRAS=0

mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
log "output directory: $OUT_DIR"

# ---------------------------------------------------------------- tools
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
command -v python3 >/dev/null || missing+=(python3)
[[ ${#missing[@]} -eq 0 ]] || install_pkgs "${missing[@]}"

# ---------------------------------------------------------------- build
CEILING_BIN=$CEILING_DIR/target/release/ceiling
if [[ $SKIP_BUILD != 1 ]]; then
    if has_target umbra; then
        log "building release binary (cargo build --release -p umbra-server)"
        (cd "$REPO" && cargo build --release -p umbra-server)
    fi
    if has_target ceiling; then
        # Built outside the workspace, as its README says.
        log "building the ceiling (cargo build --release in $CEILING_DIR)"
        rm -rf "$CEILING_DIR" && cp -r "$REPO/../shared/bench-ceiling" "$CEILING_DIR"
        (cd "$CEILING_DIR" && env -u CARGO_TARGET_DIR cargo build --release)
    fi
fi
if has_target umbra; then [[ -x $UMBRA_BIN ]] || die "no binary at $UMBRA_BIN"; fi
if has_target ceiling; then [[ -x $CEILING_BIN ]] || die "no binary at $CEILING_BIN"; fi

# ---------------------------------------------------------------- databases
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

declare -A DB_OF=([umbra]=$DB_NAME [ceiling]=${DB_NAME}_ceiling)
SERVER_PIDS=()     # every server started and not yet stopped
SAMPLER_PID=
CREATED_DBS=()
cleanup() {
    local rc=$?
    set +e
    trap - ERR
    if [[ -n $SAMPLER_PID ]]; then kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; fi
    local pid
    for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
    if [[ $KEEP_DB != 1 ]]; then
        local db
        for db in "${CREATED_DBS[@]}"; do
            psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 \
                || log "could not drop database $db"
        done
    fi
    exit "$rc"
}
stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after 5 s
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

db_url() { # db_url NAME
    local url_params=() url="postgres://$PG_USER@$PG_HOST:$PG_PORT/$1"
    [[ -z $PG_SSLMODE ]] || url_params+=("sslmode=$PG_SSLMODE")
    [[ -z $PG_SOCKET ]] || url_params+=("host=$PG_SOCKET" "port=$PG_PORT")
    if ((${#url_params[@]} > 0)); then url+="?$(IFS='&'; echo "${url_params[*]}")"; fi
    echo "$url"
}
for t in "${TARGETS[@]}"; do
    db=${DB_OF[$t]}
    log "creating database $db (Postgres $PG_VERSION)"
    psql_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    psql_admin -c "CREATE DATABASE $db" >/dev/null
    CREATED_DBS+=("$db")
    if [[ -n $PG_SYNC_COMMIT ]]; then
        psql_admin -c "ALTER DATABASE $db SET synchronous_commit = $PG_SYNC_COMMIT" >/dev/null
    fi
done
psql_umbra() { psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "${DB_OF[umbra]}" "$@"; }

# Umbra's configuration: environment only, run from $OUT_DIR (which has no config/ folder).
unset RUST_LOG UMBRA_ENV DATABASE_URL
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep -E '^UMBRA__' || true)
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
# Per target: the service client (issues and revokes) and the resource server (introspects).
declare -A SVC_ID SVC_SECRET RS_ID RS_SECRET
CACHE_SETTINGS=0
if has_target umbra; then
    umbra_cli() { DATABASE_URL=$(db_url "${DB_OF[umbra]}") "$UMBRA_BIN" "$@"; }
    umbra_cli migrate --json >/dev/null
    svc_json=$(umbra_cli client create bench-service --scope read --scope write --json)
    rs_json=$(umbra_cli client create bench-resource-server --introspect --json)
    SVC_ID[umbra]=$(json_field client_id <<<"$svc_json")
    SVC_SECRET[umbra]=$(json_field client_secret <<<"$svc_json")
    RS_ID[umbra]=$(json_field client_id <<<"$rs_json")
    RS_SECRET[umbra]=$(json_field client_secret <<<"$rs_json")
    # Settings are checked strictly (unknown keys are refused), so a binary that predates the
    # introspection cache fails this; its runs then ignore the cache settings.
    if UMBRA__INTROSPECTION__CACHE_ENABLED=true umbra_cli migrate --json >/dev/null 2>&1; then
        CACHE_SETTINGS=1
    else
        log "WARNING: this binary has no introspection cache settings; the cache-off run is a plain run"
    fi
fi
if has_target ceiling; then
    # The ceiling knows two clients from its environment and creates its table on start.
    SVC_ID[ceiling]=bench-client SVC_SECRET[ceiling]=bench-secret
    RS_ID[ceiling]=bench-rs RS_SECRET[ceiling]=bench-rs-secret
fi
use_target_auth() { # use_target_auth TARGET: the credentials the wrk scripts and probe.py read
    # client_secret_basic: base64(urlencode(id) ":" urlencode(secret)); the ids and secrets
    # Umbra generates are made of unreserved characters, so no encoding is needed.
    [[ -n ${SVC_ID[$1]} && -n ${SVC_SECRET[$1]} && -n ${RS_ID[$1]} && -n ${RS_SECRET[$1]} ]] \
        || die "no client credentials for $1"
    TOKEN_AUTH=$(printf '%s:%s' "${SVC_ID[$1]}" "${SVC_SECRET[$1]}" | base64 -w0)
    INTROSPECT_AUTH=$(printf '%s:%s' "${RS_ID[$1]}" "${RS_SECRET[$1]}" | base64 -w0)
    export TOKEN_AUTH INTROSPECT_AUTH
}

# ---------------------------------------------------------------- servers
port_free() { [[ -z $(ss -Htln "sport = :$1" 2>/dev/null) ]]; }
free_port() {
    local p
    for p in $(shuf -i 20000-40000 -n 100); do
        if port_free "$p"; then echo "$p"; return; fi
    done
    die "no free port found"
}

# launch TARGET NAME [VAR=value ...]: starts a server on a free port and waits until it is
# ready; sets LAUNCHED_PID, LAUNCHED_URL and LAUNCHED_METRICS (empty for the ceiling).
launch() {
    local target=$1 name=$2
    shift 2
    local port metrics_port
    port=$(free_port)
    LAUNCHED_URL="http://127.0.0.1:$port" LAUNCHED_METRICS=
    local db_url_now
    db_url_now=$(db_url "${DB_OF[$target]}")
    log "starting $name on $LAUNCHED_URL (workers=$UMBRA_WORKERS pool=$UMBRA_POOL min=$UMBRA_POOL_MIN sslmode=${PG_SSLMODE:-default} socket=${PG_SOCKET:-none} synchronous_commit=${PG_SYNC_COMMIT:-default}${*:+ $*})"
    if [[ $target == ceiling ]]; then
        local workers=$UMBRA_WORKERS
        ((workers > 0)) || workers=$(nproc)
        env DATABASE_URL="$db_url_now" BIND="127.0.0.1:$port" DB_POOL="$UMBRA_POOL" WORKERS="$workers" \
            CLIENT_ID="${SVC_ID[ceiling]}" CLIENT_SECRET="${SVC_SECRET[ceiling]}" \
            RS_CLIENT_ID="${RS_ID[ceiling]}" RS_CLIENT_SECRET="${RS_SECRET[ceiling]}" \
            SCOPE="read write" TOKEN_TTL=3600 "$@" "$CEILING_BIN" >"$OUT_DIR/server-$name.log" 2>&1 &
    else
        metrics_port=$(free_port)
        while [[ $metrics_port == "$port" ]]; do metrics_port=$(free_port); done
        LAUNCHED_METRICS="http://127.0.0.1:$metrics_port/metrics"
        env DATABASE_URL="$db_url_now" UMBRA__SERVER__PORT="$port" \
            UMBRA__SERVER__ISSUER="$LAUNCHED_URL" UMBRA__METRICS__PORT="$metrics_port" UMBRA__ADMIN__PORT=0 \
            "$@" "$UMBRA_BIN" serve >"$OUT_DIR/server-$name.log" 2>&1 &
    fi
    LAUNCHED_PID=$!
    SERVER_PIDS+=("$LAUNCHED_PID")
    # The ceiling has no health endpoint: it is ready when it refuses an unauthenticated /token.
    local ready_path=/health/ready ready_code=200 ready_args=() code
    if [[ $target == ceiling ]]; then
        ready_path=/token ready_code=401 ready_args=(-d grant_type=client_credentials)
    fi
    for _ in $(seq 1 300); do
        kill -0 "$LAUNCHED_PID" 2>/dev/null || { cat "$OUT_DIR/server-$name.log" >&2; die "$name exited during startup"; }
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "${ready_args[@]}" "$LAUNCHED_URL$ready_path" || true)
        [[ $code == "$ready_code" ]] && return 0
        sleep 0.1
    done
    die "$LAUNCHED_URL$ready_path did not answer $ready_code within 30 s"
}

# Settings of an Umbra start with the cache on (the default) or off.
cache_env() { # cache_env on|off
    CACHE_ENV=()
    ((CACHE_SETTINGS == 1)) || return 0
    [[ $1 == on ]] && CACHE_ENV+=(UMBRA__INTROSPECTION__CACHE_ENABLED=true) \
        || CACHE_ENV+=(UMBRA__INTROSPECTION__CACHE_ENABLED=false)
    [[ -z $CACHE_CAPACITY ]] || CACHE_ENV+=(UMBRA__INTROSPECTION__CACHE_CAPACITY=$CACHE_CAPACITY)
}

# start_server TARGET NAME [VAR=value ...]: the server measured; samples its RSS.
start_server() {
    CUR_TARGET=$1 CUR_NAME=$2
    launch "$@"
    SERVER_PID=$LAUNCHED_PID URL=$LAUNCHED_URL METRICS_URL=$LAUNCHED_METRICS
    use_target_auth "$CUR_TARGET"
    RSS_LOG=$OUT_DIR/rss-$CUR_NAME.log
    echo idle >"$PHASE_FILE"
    : >"$RSS_LOG"
    # Writes "<phase> <VmRSS kB>" every 0.2 s; the phase is read from $PHASE_FILE.
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
}
stop_server() { # stops the measured server (and any other still running)
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=
    local pid
    for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
    SERVER_PIDS=()
}
PHASE_FILE=$OUT_DIR/phase
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
metric() { # metric NAME [LABELS]: a sample of the measured Umbra's /metrics, or - without one
    [[ -n $METRICS_URL ]] || { echo -; return; }
    local name=$1
    [[ -z ${2:-} ]] || name+="{$2}"
    curl -s --max-time 5 "$METRICS_URL" | awk -v n="$name" '$1 == n { v = $2 } END { print (v == "" ? "-" : v) }'
}

# ---------------------------------------------------------------- tokens
# wrk only stops at the end of -d: wrk_until FILE LINES LOG SCRIPT CONNS interrupts it (SIGINT)
# as soon as FILE has LINES lines, and fails if it never gets there.
wrk_until() {
    local file=$1 lines=$2 logf=$3 script=$4 conns=$5 have
    local secs=$((60 + lines / 500))
    wrk -t1 -c"$conns" -d"${secs}s" -s "$BENCH_DIR/$script" "$URL" >"$logf" 2>&1 &
    local wrk_pid=$!
    while kill -0 "$wrk_pid" 2>/dev/null; do
        have=$(grep -c . "$file" 2>/dev/null || true)
        if ((have >= lines)); then kill -INT "$wrk_pid" 2>/dev/null || true; break; fi
        sleep 0.1
    done
    wait "$wrk_pid" || { cat "$logf" >&2; die "wrk $script failed"; }
    have=$(grep -c . "$file" 2>/dev/null || true)
    ((have >= lines)) || { cat "$logf" >&2; die "wrk $script: $file has $have of $lines lines"; }
}
issue_tokens() { # issue_tokens FILE N: N access tokens of the measured server, one a line
    local file=$1 n=$2
    log "issuing $n access tokens"
    set_phase issue
    : >"$file"
    TOKENS=$n TOKENS_FILE=$file wrk_until "$file" "$n" "$OUT_DIR/issue-$CUR_NAME.log" issue_tokens.lua 8
    head -n "$n" "$file" >"$file.tmp" && mv "$file.tmp" "$file"
    set_phase idle
}
walk_tokens() { # walk_tokens FILE: introspects each token once (fills Umbra's cache)
    local file=$1 done_file=$OUT_DIR/walk.done
    log "introspecting each of $(grep -c . "$file") tokens once"
    set_phase walk
    rm -f "$done_file"
    TOKENS_FILE=$file WALK_DONE_FILE=$done_file \
        wrk_until "$done_file" 1 "$OUT_DIR/walk-$CUR_NAME.log" walk.lua 32
    set_phase idle
    local inactive
    inactive=$(grep -o 'inactive=[0-9]*' "$done_file" | cut -d= -f2)
    ((inactive == 0)) || die "$inactive tokens of $file were not active"
}
sanity_check() { # a few tokens of FILE are active, and /token answers with a token
    local token body
    for token in $(shuf -n 5 "$1"); do
        body=$(curl -s --max-time 5 -u "${RS_ID[$CUR_TARGET]}:${RS_SECRET[$CUR_TARGET]}" -d "token=$token" "$URL/introspect")
        [[ $body == *'"active":true'* ]] || die "introspection of an issued token said: $body"
    done
    body=$(curl -s --max-time 5 -u "${SVC_ID[$CUR_TARGET]}:${SVC_SECRET[$CUR_TARGET]}" -d grant_type=client_credentials "$URL/token")
    [[ $body == *'"access_token":"'* ]] || die "POST /token said: $body"
}

# ---------------------------------------------------------------- load
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

RESULTS_TSV=$OUT_DIR/results.tsv
FACTS=$OUT_DIR/facts.txt
printf 'target\tround\tscenario\tconns\trps\tp50\tp99\tnon2xx\tsockerr\tbad\tpeak_mib\tcpu\tpgcpu\twrkcpu\tother\thit\n' >"$RESULTS_TSV"
: >"$FACTS"
FAILURES=()
ROUND=0
run_scenario() { # run_scenario NAME SCRIPT CONNS: measured (and re-measured while disturbed)
    local name=$1 script=$2 conns=$3 threads=$WRK_THREADS
    ((threads <= conns)) || threads=$conns
    local tag="$CUR_NAME-$name-c$conns" attempt
    for attempt in $(seq 1 $((RETRY_BUSY + 1))); do
        measure "$name" "$script" "$conns" "$threads" "$tag"
        # Work other than the server, Postgres and wrk (a compile, say) steals cores mid-run: retry.
        if awk -v o="$LAST_OTHER" -v q="$BUSY_OTHER" 'BEGIN { exit !(o >= q) }'; then
            if ((attempt <= RETRY_BUSY)); then
                log "other work used $LAST_OTHER cores during $tag; measuring it again"
                continue
            fi
            BUSY_NOTES+=("$tag: other work used $LAST_OTHER cores during the run; its figures are pessimistic")
        fi
        break
    done
    printf '%s\n' "$LAST_ROW" >>"$RESULTS_TSV"
    FAILURES+=("${LAST_FAILURES[@]}")
}

measure() { # measure NAME SCRIPT CONNS THREADS TAG: one warm-up and one measured wrk run
    local name=$1 script=$2 conns=$3 threads=$4 tag=$5
    export BENCH_THREADS=$threads
    wait_quiet "$tag"
    if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
        set_phase "warmup-$tag"
        timeout 300 wrk -t"$threads" -c"$conns" -d"$WARMUP" -s "$BENCH_DIR/$script" "$URL" \
            >"$OUT_DIR/warmup-$tag.log" 2>&1 || die "wrk warm-up for $tag failed"
    fi
    EXTRA_CPU_SECS=0  # CPU seconds of a helper that runs beside wrk (the checker), set by AFTER_MEASURE
    [[ -z ${BEFORE_MEASURE:-} ]] || $BEFORE_MEASURE
    log "measuring $tag, $DURATION"
    set_phase "$tag"
    local hits0 misses0 bypass0 hits1 misses1 bypass1
    hits0=$(metric umbra_introspection_cache_lookups_total 'outcome="hit"')
    misses0=$(metric umbra_introspection_cache_lookups_total 'outcome="miss"')
    bypass0=$(metric umbra_introspection_cache_lookups_total 'outcome="bypass"')
    local t0 c0 p0 s0 t1 c1 p1 s1 TIMEFORMAT='%U %S'
    t0=$(date +%s%N); c0=$(cpu_ticks); p0=$(pg_ticks); s0=$(sys_busy_ticks)
    { time timeout 900 wrk -t"$threads" -c"$conns" -d"$DURATION" --timeout 5s --latency \
        -s "$BENCH_DIR/$script" "$URL" >"$OUT_DIR/$tag.log" 2>&1; } 2>"$OUT_DIR/$tag.time" \
        || { cat "$OUT_DIR/$tag.log" >&2; die "wrk for $tag failed"; }
    t1=$(date +%s%N); c1=$(cpu_ticks); p1=$(pg_ticks); s1=$(sys_busy_ticks)
    set_phase idle
    hits1=$(metric umbra_introspection_cache_lookups_total 'outcome="hit"')
    misses1=$(metric umbra_introspection_cache_lookups_total 'outcome="miss"')
    bypass1=$(metric umbra_introspection_cache_lookups_total 'outcome="bypass"')
    [[ -z ${AFTER_MEASURE:-} ]] || $AFTER_MEASURE
    sed 's/^/    /' "$OUT_DIR/$tag.log" | grep -v '^    BENCH' >&2
    local line
    line=$(grep '^BENCH ' "$OUT_DIR/$tag.log") || die "no BENCH line in $OUT_DIR/$tag.log"
    local -A m=()
    local kv
    for kv in ${line#BENCH }; do m[${kv%%=*}]=${kv#*=}; done
    local sockerr=$((m[connect_err] + m[read_err] + m[write_err] + m[timeout_err]))
    local peak
    peak=$(awk -v kb="$(peak_rss_kb "$tag")" 'BEGIN { printf "%.1f", kb / 1024 }')
    # CPU used during the run, in cores: the server, Postgres, wrk, and the whole machine.
    local secs cpu pgcpu wrkcpu syscpu hit
    secs=$(awk -v ns="$((t1 - t0))" 'BEGIN { print ns / 1e9 }')
    cpu=$(awk -v d="$((c1 - c0))" -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.2f", d / hz / s }')
    pgcpu=$(awk -v d="$((p1 - p0))" -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.2f", d / hz / s }')
    syscpu=$(awk -v d="$((s1 - s0))" -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.2f", d / hz / s }')
    wrkcpu=$(awk -v s="$secs" '{ printf "%.2f", ($1 + $2) / s }' "$OUT_DIR/$tag.time")
    # The share of the run's cache lookups that were hits (bypasses count as lookups).
    hit=$(awk -v h0="$hits0" -v h1="$hits1" -v m0="$misses0" -v m1="$misses1" -v b0="$bypass0" -v b1="$bypass1" 'BEGIN {
        if (h0 == "-" || h1 == "-" || m0 == "-" || m1 == "-") { print "-"; exit }
        t = (h1 - h0) + (m1 - m0) + (b1 == "-" ? 0 : b1 - b0)
        if (t > 0) printf "%.1f", 100 * (h1 - h0) / t; else print "-" }')
    LAST_OTHER=$(awk -v a="$syscpu" -v u="$cpu" -v p="$pgcpu" -v w="$wrkcpu" -v x="$EXTRA_CPU_SECS" -v s="$secs" \
        'BEGIN { o = a - u - p - w - x / s; printf "%.2f", (o < 0 ? 0 : o) }')
    LAST_ROW=$(printf '%s\t' "$CUR_TARGET" "$ROUND" "$name" "$conns" "${m[rps]}" "${m[p50_ms]}" \
        "${m[p99_ms]}" "${m[non2xx]}" "$sockerr" "${m[bad_bodies]}" "$peak" "$cpu" "$pgcpu" \
        "$wrkcpu" "$LAST_OTHER")$hit
    LAST_FAILURES=()
    if ((m[non2xx] > 0)); then LAST_FAILURES+=("$tag: ${m[non2xx]} non-2xx responses"); fi
    if ((sockerr > 0)); then LAST_FAILURES+=("$tag: $sockerr socket errors (connect ${m[connect_err]}, read ${m[read_err]}, write ${m[write_err]}, timeout ${m[timeout_err]})"); fi
    if ((m[bad_bodies] > 0)); then LAST_FAILURES+=("$tag: ${m[bad_bodies]} bodies failed the check"); fi
    if ((m[requests] == 0)); then LAST_FAILURES+=("$tag: no requests completed"); fi
    return 0
}

# ---------------------------------------------------------------- scenarios
declare -A POOL_OF  # the introspection pool of each target, issued at its first start
main_scenarios() { # what both targets run: introspection over the pool, then issuance
    local pool=$OUT_DIR/tokens-$CUR_TARGET.txt
    if [[ -z ${POOL_OF[$CUR_TARGET]:-} ]]; then
        issue_tokens "$pool" "$TOKENS"
        POOL_OF[$CUR_TARGET]=$pool
    fi
    sanity_check "$pool"
    # Every start begins with an empty cache; the walk fills it (the ceiling's Postgres pages
    # are warmed the same way).
    walk_tokens "$pool"
    local c
    for c in $CONNECTIONS; do TOKENS_FILE=$pool run_scenario introspect introspect.lua "$c"; done
    for c in $CONNECTIONS; do run_scenario client_credentials token.lua "$c"; done
}

# The revocation mix: a fresh pool per round (a tenth of it or so ends up revoked), walked
# into the cache, then revmix.lua with probe.py's checker running beside the measured run.
revmix_scenarios() {
    local pool=$OUT_DIR/revmix-r$ROUND.txt c
    issue_tokens "$pool" "$TOKENS"
    walk_tokens "$pool"
    for c in $REVMIX_CONNECTIONS; do
        REVOKED_FILE=$OUT_DIR/revoked-r$ROUND-c$c.txt
        : >"$REVOKED_FILE"
        CHECK_LOG=$OUT_DIR/check-r$ROUND-c$c.log
        TOKENS_FILE=$pool REVOKED_FILE=$REVOKED_FILE REVOKE_EVERY=$REVOKE_EVERY \
            BEFORE_MEASURE=start_checker AFTER_MEASURE=stop_checker \
            run_scenario revmix revmix.lua "$c"
        verify_revoked "$REVOKED_FILE" "$c"
    done
}
start_checker() {
    local secs
    secs=$(awk -v d="$DURATION" 'BEGIN { sub(/s$/, "", d); print d }')
    python3 "$BENCH_DIR/probe.py" check --url "$URL" --seconds "$secs" --threads "$CHECK_THREADS" \
        >"$CHECK_LOG" 2>&1 &
    CHECKER_PID=$!
}
stop_checker() {
    local rc=0
    wait "$CHECKER_PID" || rc=$?
    local line
    line=$(grep '^CHECK ' "$CHECK_LOG") || { cat "$CHECK_LOG" >&2; die "the revocation checker printed nothing"; }
    echo "$line round=$ROUND" >>"$FACTS"
    log "checker: ${line#CHECK }"
    EXTRA_CPU_SECS=$(grep -o 'cpu_s=[0-9.]*' <<<"$line" | cut -d= -f2)
    ((rc == 0)) || FAILURES+=("r$ROUND revmix: the revocation checker failed: ${line#CHECK } ($(grep -m1 'first error' "$CHECK_LOG" || true))")
}
verify_revoked() { # verify_revoked FILE CONNS: every token wrk revoked is inactive now
    local file=$1 conns=$2 hashes=$OUT_DIR/revoked-hashes.txt rc=0
    local n
    n=$(grep -c . "$file" || true)
    log "checking that the $n tokens wrk revoked are inactive"
    psql_umbra -Atc "SELECT encode(hash, 'hex') FROM access_tokens WHERE revoked_at IS NOT NULL" >"$hashes"
    # A revocation still in flight when wrk stopped may never have run: at most one per
    # connection, for the warm-up and for the measured run.
    python3 "$BENCH_DIR/probe.py" verify --url "$URL" --tokens "$file" --revoked-in-db "$hashes" \
        --max-unprocessed "$((2 * conns))" >"$OUT_DIR/verify-r$ROUND-c$conns.log" 2>&1 || rc=$?
    local line
    line=$(grep '^VERIFY ' "$OUT_DIR/verify-r$ROUND-c$conns.log") \
        || { cat "$OUT_DIR/verify-r$ROUND-c$conns.log" >&2; die "the verifier printed nothing"; }
    echo "$line round=$ROUND" >>"$FACTS"
    log "verifier: ${line#VERIFY }"
    ((rc == 0)) || FAILURES+=("r$ROUND revmix: ${line#VERIFY }")
    ((n > 0)) || FAILURES+=("r$ROUND revmix: wrk revoked no token")
}

umbra_round() {
    cache_env on
    start_server umbra "umbra-r$ROUND" "${CACHE_ENV[@]}"
    main_scenarios
    ((EXTRAS == 0)) || revmix_scenarios
    stop_server
    if ((EXTRAS == 1)) && [[ -n $NOCACHE_CONNECTIONS ]]; then
        cache_env off
        start_server umbra "umbra-nocache-r$ROUND" "${CACHE_ENV[@]}"
        sanity_check "${POOL_OF[umbra]}"
        walk_tokens "${POOL_OF[umbra]}"
        local c
        for c in $NOCACHE_CONNECTIONS; do
            TOKENS_FILE=${POOL_OF[umbra]} run_scenario introspect_nocache introspect.lua "$c"
        done
        stop_server
    fi
}
ceiling_round() {
    start_server ceiling "ceiling-r$ROUND"
    main_scenarios
    stop_server
}

# RSS with RSS_TOKENS cached tokens: a fresh start, RSS_TOKENS issued and introspected once
# each. The server is left running for the delay probe.
rss_scenario() {
    cache_env on
    start_server umbra umbra-rss "${CACHE_ENV[@]}"
    local pool=$OUT_DIR/rss-tokens.txt
    issue_tokens "$pool" "$RSS_TOKENS"
    walk_tokens "$pool"
    local hwm rss entries
    hwm=$(proc_kb VmHWM) rss=$(proc_kb VmRSS)
    entries=$(metric umbra_introspection_cache_entries)
    local line
    line=$(awk -v h="$hwm" -v r="$rss" -v s="$(peak_rss_kb walk)" -v n="$RSS_TOKENS" -v e="$entries" 'BEGIN {
        p = (h > s ? h : s); if (r > p) p = r
        printf "RSS tokens=%d entries=%s peak_mib=%.1f hwm_mib=%.1f rss_mib=%.1f", n, e, p / 1024, h / 1024, r / 1024 }')
    echo "$line" >>"$FACTS"
    log "${line#RSS }"
}

# The delay until a revocation at instance A is seen at instance B (same database).
delay_scenario() {
    cache_env on
    [[ $CUR_TARGET == umbra && -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null || {
        start_server umbra umbra-a "${CACHE_ENV[@]}"
    }
    launch umbra umbra-b "${CACHE_ENV[@]}"
    log "cross-instance revocation delay: $DELAY_TRIALS trials (revoke at $URL, poll $LAUNCHED_URL)"
    local rc=0 line
    python3 "$BENCH_DIR/probe.py" delay --revoke-url "$URL" --poll-url "$LAUNCHED_URL" \
        --trials "$DELAY_TRIALS" >"$OUT_DIR/delay.log" 2>&1 || rc=$?
    line=$(grep '^DELAY ' "$OUT_DIR/delay.log") || { cat "$OUT_DIR/delay.log" >&2; die "the delay probe printed nothing"; }
    # B's cache lookups show whether B answered from its cache at all (a bypass means not).
    local outcome
    for outcome in hit miss bypass; do
        line+=" b_${outcome}=$(METRICS_URL=$LAUNCHED_METRICS metric umbra_introspection_cache_lookups_total "outcome=\"$outcome\"")"
    done
    echo "$line" >>"$FACTS"
    log "delay: ${line#DELAY }"
    ((rc == 0)) || FAILURES+=("cross-instance delay: ${line#DELAY }")
}

for ROUND in $(seq 1 "$ROUNDS"); do
    order=("${TARGETS[@]}")
    # Alternate which target goes first, so that a drift in the machine favours neither.
    if ((${#order[@]} == 2 && ROUND % 2 == 0)); then order=("${order[1]}" "${order[0]}"); fi
    for t in "${order[@]}"; do
        log "round $ROUND of $ROUNDS: $t"
        "${t}_round"
    done
done
if ((EXTRAS == 1)); then
    ((RSS_TOKENS == 0)) || rss_scenario
    ((DELAY_TRIALS == 0)) || delay_scenario
    stop_server
fi

# ---------------------------------------------------------------- summary
set_phase done
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$REPO" diff-index --quiet HEAD -- server 2>/dev/null; then GIT_REV="$GIT_REV+dirty(server/)"; fi
built() { [[ -x $1 ]] && date -u -r "$1" +%Y-%m-%dT%H:%M:%SZ || echo -; }
{
    echo "benchmark $(date -u +%Y-%m-%dT%H:%M:%SZ), targets ${TARGETS[*]}, HEAD $GIT_REV"
    has_target umbra && echo "umbra: $UMBRA_BIN built $(built "$UMBRA_BIN"); cache settings $( ((CACHE_SETTINGS == 1)) && echo "known" || echo "unknown to this binary (ignored)")"
    has_target ceiling && echo "ceiling: $CEILING_BIN built $(built "$CEILING_BIN")"
    echo "config: rounds=$ROUNDS workers=$UMBRA_WORKERS pool=$UMBRA_POOL pool_min=$UMBRA_POOL_MIN sslmode=${PG_SSLMODE:-default} socket=${PG_SOCKET:-none} synchronous_commit=${PG_SYNC_COMMIT:-default} wrk_threads=$WRK_THREADS duration=$DURATION warmup=$WARMUP tokens=$TOKENS revoke_every=$REVOKE_EVERY rss_tokens=$RSS_TOKENS delay_trials=$DELAY_TRIALS cache_capacity=${CACHE_CAPACITY:-default} verify_bodies=$VERIFY_BODIES"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Postgres $PG_VERSION"
    echo
    python3 "$BENCH_DIR/report.py" "$RESULTS_TSV" "$FACTS"
    for n in "${BUSY_NOTES[@]}"; do echo "note: $n"; done
} | tee "$OUT_DIR/summary.md"

if ((${#FAILURES[@]} > 0)); then
    for f in "${FAILURES[@]}"; do printf '\033[1;31m[bench] FAIL:\033[0m %s\n' "$f" >&2; done
    exit 1
fi
log "all responses were 2xx and no revoked token was seen active; logs in $OUT_DIR"
