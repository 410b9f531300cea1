#!/bin/sh
# Creates the demo API and clients of docker-compose.yml, idempotently, through the umbra CLI
# (the `bootstrap` service runs it once per `docker compose up`; running it again is harmless):
#
# - $DEMO_RS_CLIENT_ID, the demo API's resource server; its credentials go to
#   $CREDENTIALS_DIR/$DEMO_RS_CLIENT_ID.json, which the resource-server service reads;
# - $DEMO_RESOURCE, the demo API as a resource (RFC 8707) defining $DEMO_CLIENT_SCOPES, whose
#   tokens only $DEMO_RS_CLIENT_ID may introspect;
# - $DEMO_CLIENT_ID, a client_credentials client allowed the API with its scopes, and using
#   it as its default resource (so its tokens name it without asking); its credentials go to
#   $CREDENTIALS_DIR/$DEMO_CLIENT_ID.json and are printed.
#
# For each client: if Umbra does not know it, create it; if it exists but its credentials file
# is missing (a new volume), rotate its secret (Umbra keeps only hashes, so the old secret
# cannot be recovered); otherwise keep everything. The files are the JSON that
# `umbra client create|rotate-secret --json` prints, readable only by their owner.
#
# Umbra is configured as for the server (DATABASE_URL, UMBRA__…). Exits non-zero on any
# error.
set -eu

CREDENTIALS_DIR=${CREDENTIALS_DIR:-/var/lib/umbra/credentials}
DEMO_RESOURCE=${DEMO_RESOURCE:-http://localhost:8081}
DEMO_RS_CLIENT_ID=${DEMO_RS_CLIENT_ID:-demo-rs}
DEMO_CLIENT_ID=${DEMO_CLIENT_ID:-demo-client}
DEMO_CLIENT_SCOPES=${DEMO_CLIENT_SCOPES:-read write}
AUTH_PUBLIC_URL=${AUTH_PUBLIC_URL:-http://localhost:8080}
RS_PUBLIC_URL=${RS_PUBLIC_URL:-http://localhost:8081}

say() { echo "bootstrap: $*"; }

umask 077
mkdir -p "$CREDENTIALS_DIR"
trap 'rm -f "$CREDENTIALS_DIR"/*.json.tmp' EXIT

umbra migrate >/dev/null

# has_credentials FILE ID: FILE holds a secret for client ID.
has_credentials() {
    [ -s "$1" ] && grep -q '"client_secret": *"' "$1" && grep -q "\"client_id\": *\"$2\"" "$1"
}

# ensure_client ID NAME [create options…]
ensure_client() {
    id=$1
    name=$2
    shift 2
    file="$CREDENTIALS_DIR/$id.json"
    if shown=$(umbra client show "$id" --json 2>&1); then
        if has_credentials "$file" "$id"; then
            say "client $id exists; keeping $file"
            return 0
        fi
        say "client $id exists but $file is missing: issuing a new secret"
        umbra client rotate-secret "$id" --json >"$file.tmp"
    else
        case $shown in
            *"no client"*) ;;
            *)
                say "cannot look up client $id: $shown" >&2
                exit 1
                ;;
        esac
        say "creating client $id"
        umbra client create "$name" --id "$id" "$@" --json >"$file.tmp"
    fi
    mv -f "$file.tmp" "$file"
    has_credentials "$file" "$id" || {
        say "the umbra CLI did not print credentials for $id" >&2
        exit 1
    }
}

# ensure_resource: the demo API, with its scopes and resource server as configured now.
ensure_resource() {
    if shown=$(umbra resource show "$DEMO_RESOURCE" --json 2>&1); then
        say "resource $DEMO_RESOURCE exists; setting its scopes and resource server"
        umbra resource update "$DEMO_RESOURCE" --scope "$DEMO_CLIENT_SCOPES" \
            --introspector "$DEMO_RS_CLIENT_ID" >/dev/null
    else
        case $shown in
            *"no resource"*) ;;
            *)
                say "cannot look up resource $DEMO_RESOURCE: $shown" >&2
                exit 1
                ;;
        esac
        say "creating resource $DEMO_RESOURCE"
        umbra resource create --identifier "$DEMO_RESOURCE" --name "Demo API" \
            --scope "$DEMO_CLIENT_SCOPES" --introspector "$DEMO_RS_CLIENT_ID" >/dev/null
    fi
}

ensure_client "$DEMO_RS_CLIENT_ID" "Demo resource server"
ensure_resource
ensure_client "$DEMO_CLIENT_ID" "Demo client" --scope "$DEMO_CLIENT_SCOPES"
# Both are replacements, so running them again changes nothing.
umbra client allow-resource "$DEMO_CLIENT_ID" "$DEMO_RESOURCE" >/dev/null
umbra client default-resource "$DEMO_CLIENT_ID" "$DEMO_RESOURCE" >/dev/null

secret=$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' "$CREDENTIALS_DIR/$DEMO_CLIENT_ID.json")
cat <<EOF
bootstrap: done. Demo client (development only: this prints its secret):
  client_id:     $DEMO_CLIENT_ID
  client_secret: $secret
Try it:
  TOKEN=\$(curl -s -u '$DEMO_CLIENT_ID:$secret' -d grant_type=client_credentials --data-urlencode 'scope=$DEMO_CLIENT_SCOPES' --data-urlencode 'resource=$DEMO_RESOURCE' $AUTH_PUBLIC_URL/token | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
  curl -s -H "Authorization: Bearer \$TOKEN" $RS_PUBLIC_URL/notes
EOF
