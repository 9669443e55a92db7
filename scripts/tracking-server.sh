#!/usr/bin/env bash
# A shared MLflow tracking server: PostgreSQL as the backend store, artifacts proxied by the server
# (jobs need only its URL), MLflow's basic-auth app in front of both. Bound to 127.0.0.1 by default.
#
#   scripts/tracking-server.sh start     # idempotent: initialises the database the first time
#   scripts/tracking-server.sh status
#   scripts/tracking-server.sh env       # the credentials of the user `lab`: eval "$(scripts/tracking-server.sh env)"
#   scripts/tracking-server.sh stop      # the server and the database
#
# State (database, artifacts, logs, passwords) lives in $RESNET_LAB_TRACKING_DIR
# (default ${XDG_STATE_HOME:-$HOME/.local/state}/resnet-lab/tracking). Run as root, the database belongs to the
# postgres user and lives in $RESNET_LAB_PGDATA (default /var/lib/postgresql/resnet-lab), a folder that
# user can reach. Settings: RESNET_LAB_TRACKING_HOST (127.0.0.1), RESNET_LAB_TRACKING_PORT (5000),
# RESNET_LAB_PG_PORT (5433), RESNET_LAB_TRACKING_WORKERS (2).
#
# The first start creates two users: the admin and `lab`, whose credentials are in
# $RESNET_LAB_TRACKING_DIR/credentials.env (what `env` prints: MLFLOW_TRACKING_USERNAME and _PASSWORD).
# The passwords are never on a command line: the database's is in a pgpass file, the admin's in the
# auth config, both readable by their owner only.
set -euo pipefail

STATE="${RESNET_LAB_TRACKING_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/resnet-lab/tracking}"
HOST="${RESNET_LAB_TRACKING_HOST:-127.0.0.1}"
PORT="${RESNET_LAB_TRACKING_PORT:-5000}"
PG_PORT="${RESNET_LAB_PG_PORT:-5433}"
WORKERS="${RESNET_LAB_TRACKING_WORKERS:-2}"
if [[ $(id -u) == 0 ]]; then
    PGDATA="${RESNET_LAB_PGDATA:-/var/lib/postgresql/resnet-lab}"
    AS_PG=(runuser -u postgres --)  # PostgreSQL refuses to run as root
else
    PGDATA="${RESNET_LAB_PGDATA:-$STATE/postgres}"
    AS_PG=()
fi
URL="http://$HOST:$PORT"
SERVER_PID="$STATE/server.pid"

usage() {
    echo "usage: $(basename "$0") start|stop|status|env   (state in \$RESNET_LAB_TRACKING_DIR, now $STATE)" >&2
    exit 2
}

pg_bin() {
    local bin
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    if [[ -z "$bin" ]]; then
        echo "error: PostgreSQL not found: apt-get install -y postgresql" >&2
        exit 1
    fi
    echo "$bin"
}

mlflow_bin() {
    if ! command -v mlflow >/dev/null 2>&1; then
        echo "error: mlflow not found: activate the project's venv (pip install -e \".[team]\")" >&2
        exit 1
    fi
    if ! python -c "import psycopg2" 2>/dev/null; then
        echo "error: the PostgreSQL driver is missing: pip install -e \".[team]\"" >&2
        exit 1
    fi
}

secret() {
    python3 -c "import secrets; print(secrets.token_urlsafe(18))"
}

psql_admin() {  # SQL as the database's superuser, over its own socket
    "${AS_PG[@]}" "$(pg_bin)/psql" -h "$PGDATA" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

init_database() {
    [[ -s "$PGDATA/PG_VERSION" ]] && return
    mkdir -p "$PGDATA"
    if ((${#AS_PG[@]})); then
        chown postgres: "$PGDATA"
        if ! "${AS_PG[@]}" test -w "$PGDATA"; then
            echo "error: the postgres user cannot reach $PGDATA; set RESNET_LAB_PGDATA to a folder it can" >&2
            exit 1
        fi
    fi
    chmod 700 "$PGDATA"
    # Local socket (in PGDATA, reachable by its owner only): trust; TCP: passwords.
    "${AS_PG[@]}" "$(pg_bin)/initdb" -D "$PGDATA" -U postgres --no-locale -E UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$STATE/initdb.log"
}

start_database() {
    init_database
    if ! "${AS_PG[@]}" "$(pg_bin)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        "${AS_PG[@]}" "$(pg_bin)/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGDATA" >/dev/null
    fi
    [[ -s "$STATE/pgpass" ]] && return
    local password
    password="$(secret)"
    psql_admin <<EOF
CREATE ROLE mlflow LOGIN PASSWORD '$password';
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
EOF
    (umask 077 && echo "127.0.0.1:$PG_PORT:*:mlflow:$password" >"$STATE/pgpass")
}

write_auth_config() {
    [[ -s "$STATE/basic_auth.ini" ]] && return
    local admin lab
    admin="$(secret)"
    lab="$(secret)"
    (umask 077 && cat >"$STATE/basic_auth.ini" <<EOF
[mlflow]
# Every user may read and log into every experiment; only the admin manages users.
default_permission = EDIT
database_uri = postgresql+psycopg2://mlflow@127.0.0.1:$PG_PORT/mlflow_auth
admin_username = admin
admin_password = $admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# Checking a password (PBKDF2) costs about 0.3 s of CPU: without this cache every logged epoch would pay it.
# A changed password is refused by every worker within this many seconds.
auth_cache_ttl_seconds = 60
EOF
    printf 'export MLFLOW_TRACKING_USERNAME=lab\nexport MLFLOW_TRACKING_PASSWORD=%s\n' "$lab" >"$STATE/credentials.env"
    secret >"$STATE/flask-secret")  # the auth app's CSRF key: the same across restarts
}

server_alive() {
    [[ -s "$SERVER_PID" ]] && kill -0 "$(cat "$SERVER_PID")" 2>/dev/null
}

wait_healthy() {
    for _ in $(seq 120); do
        python3 -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('$URL/health', timeout=2).read() != b'OK')" \
            2>/dev/null && return 0
        if ! server_alive; then
            echo "error: the MLflow server stopped; its log: $STATE/server.log" >&2
            tail -20 "$STATE/server.log" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "error: the MLflow server did not answer $URL/health within a minute; its log: $STATE/server.log" >&2
    exit 1
}

create_lab_user() {  # once: the user that jobs log in as
    [[ -e "$STATE/lab-user-created" ]] && return
    local admin
    admin="$(sed -n 's/^admin_password = //p' "$STATE/basic_auth.ini")"
    # shellcheck disable=SC1091
    (. "$STATE/credentials.env" && ADMIN_PASSWORD="$admin" python3 - "$URL" <<'EOF'
import base64, json, os, sys, urllib.request
token = base64.b64encode(f"admin:{os.environ['ADMIN_PASSWORD']}".encode()).decode()
body = json.dumps({"username": os.environ["MLFLOW_TRACKING_USERNAME"],
                   "password": os.environ["MLFLOW_TRACKING_PASSWORD"]}).encode()
request = urllib.request.Request(f"{sys.argv[1]}/api/2.0/mlflow/users/create", data=body, method="POST",
                                 headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=30)
EOF
    )
    touch "$STATE/lab-user-created"
}

start() {
    mlflow_bin
    mkdir -p "$STATE/artifacts"
    chmod 700 "$STATE"
    start_database
    write_auth_config
    if ! server_alive; then
        # Its own session, so that stop ends the server and every worker it forked.
        PGPASSFILE="$STATE/pgpass" MLFLOW_AUTH_CONFIG_PATH="$STATE/basic_auth.ini" \
            MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$STATE/flask-secret")" setsid mlflow server \
            --app-name basic-auth --host "$HOST" --port "$PORT" --workers "$WORKERS" \
            --backend-store-uri "postgresql+psycopg2://mlflow@127.0.0.1:$PG_PORT/mlflow" \
            --serve-artifacts --artifacts-destination "$STATE/artifacts" \
            >>"$STATE/server.log" 2>&1 </dev/null &
        echo $! >"$SERVER_PID"
    fi
    wait_healthy
    create_lab_user
    echo "MLflow tracking server: $URL (PostgreSQL on 127.0.0.1:$PG_PORT, artifacts in $STATE/artifacts)"
    echo "credentials of the user lab: eval \"\$($0 env)\" (or . $STATE/credentials.env)"
}

environment() {
    if [[ ! -s "$STATE/credentials.env" ]]; then
        echo "error: no credentials yet in $STATE: run $(basename "$0") start first" >&2
        exit 1
    fi
    cat "$STATE/credentials.env"
}

stop() {
    if server_alive; then
        local pid
        pid="$(cat "$SERVER_PID")"
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$SERVER_PID"
    if [[ -s "$PGDATA/PG_VERSION" ]] && "${AS_PG[@]}" "$(pg_bin)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        "${AS_PG[@]}" "$(pg_bin)/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    fi
    echo "tracking server stopped ($STATE)"
}

status() {
    local down=0
    if [[ -s "$PGDATA/PG_VERSION" ]] && "${AS_PG[@]}" "$(pg_bin)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        echo "postgresql: running (127.0.0.1:$PG_PORT, $PGDATA)"
    else
        echo "postgresql: stopped"
        down=1
    fi
    if server_alive; then
        echo "mlflow server: running (pid $(cat "$SERVER_PID"), $URL)"
    else
        echo "mlflow server: stopped"
        down=1
    fi
    return "$down"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) environment ;;
    *) usage ;;
esac
