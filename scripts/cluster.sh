#!/usr/bin/env bash
# A local Samsa cluster: a 3-node ZooKeeper ensemble (scripts/zookeeper.sh, in DIR/zk) and N brokers
# (ids 1..N) on loopback. Everything lives in the folder you give it; ports are free loopback ports
# chosen at the first start and kept in DIR/cluster.env, so the cluster (or one broker) can be
# stopped and started again with its data.
#
#   scripts/cluster.sh start DIR [--brokers N] [-o key=value ...]
#                                          start ZooKeeper and every broker (N, default 3, fixed at the
#                                          first start); -o settings are passed to every broker and kept
#                                          for later starts; prints the bootstrap string
#   scripts/cluster.sh stop DIR            SIGTERM every broker (SIGKILL after 60 s), then stop ZooKeeper
#   scripts/cluster.sh status DIR          one line per broker and per ZooKeeper node
#   scripts/cluster.sh bootstrap DIR       print the bootstrap string (127.0.0.1:p1,127.0.0.1:p2,...)
#   scripts/cluster.sh kill DIR --broker ID          SIGKILL one broker (a crash)
#   scripts/cluster.sh stop-broker DIR --broker ID   SIGTERM one broker (controlled shutdown)
#   scripts/cluster.sh start-broker DIR --broker ID  start one broker again (after a kill, once its old
#                                                    ZooKeeper session has expired: up to 18 s by default)
#
# Broker ID keeps its data in DIR/broker<ID>/data and logs to DIR/broker<ID>/broker.log. The brokers
# share the ensemble under the chroot /samsa (`scripts/zookeeper.sh cli DIR/zk ls /samsa/brokers/ids`).
# The binary is $SAMSA_BIN, else .build/debug/samsa (built with `swift build --product samsa` when
# missing). With fewer than 3 brokers, offsets.topic.replication.factor defaults to the broker count.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
ZK="$REPO/scripts/zookeeper.sh"
CHROOT=/samsa
STOP_TIMEOUT=60
START_TIMEOUT=60

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

samsa_bin() {
    if [[ -n "${SAMSA_BIN:-}" ]]; then
        [[ -x "$SAMSA_BIN" ]] || { echo "cluster.sh: SAMSA_BIN=$SAMSA_BIN is not an executable" >&2; exit 1; }
        echo "$SAMSA_BIN"
        return
    fi
    local bin="$REPO/.build/debug/samsa"
    if [[ ! -x "$bin" ]]; then
        echo "cluster.sh: building samsa (swift build --product samsa)" >&2
        (cd "$REPO" && swift build --product samsa >&2)
    fi
    echo "$bin"
}

load_env() {
    [[ -f "$DIR/cluster.env" ]] || { echo "cluster.sh: no cluster in $DIR (run start first)" >&2; exit 1; }
    # shellcheck disable=SC1091
    source "$DIR/cluster.env"
}

configure() {
    local brokers=$1
    mkdir -p "$DIR"
    {
        echo "BROKERS=$brokers"
        for ((i = 1; i <= brokers; i++)); do echo "PORT_$i=$(free_port)"; done
    } >"$DIR/cluster.env.tmp"
    mv "$DIR/cluster.env.tmp" "$DIR/cluster.env"
}

bootstrap() {
    local s=""
    for ((i = 1; i <= BROKERS; i++)); do
        local port="PORT_$i"
        s="${s:+$s,}127.0.0.1:${!port}"
    done
    echo "$s"
}

check_id() {
    local id=$1
    [[ "$id" =~ ^[0-9]+$ ]] && ((id >= 1 && id <= BROKERS)) || { echo "cluster.sh: no broker $id (brokers are 1..$BROKERS)" >&2; exit 2; }
}

# The pid of broker ID when it is running (the pid file's process, still a samsa broker on its port).
broker_pid() {
    local id=$1 pidfile="$DIR/broker$1/broker.pid" port="PORT_$1" pid
    [[ -f "$pidfile" ]] || return 1
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "PLAINTEXT://127.0.0.1:${!port} " || return 1
    echo "$pid"
}

start_broker() {
    local id=$1 bin=$2
    check_id "$id"
    if broker_pid "$id" >/dev/null; then return 0; fi
    local dir="$DIR/broker$id" port="PORT_$id" connect
    mkdir -p "$dir/data"
    connect="$("$ZK" connect "$DIR/zk")$CHROOT"
    local args=(broker --broker-id "$id" --listeners "PLAINTEXT://127.0.0.1:${!port}" --log-dirs "$dir/data"
        -o "zookeeper.connect=$connect")
    if ((BROKERS < 3)); then args+=(-o "offsets.topic.replication.factor=$BROKERS"); fi
    if [[ -f "$DIR/broker.overrides" ]]; then
        while IFS= read -r kv; do [[ -n "$kv" ]] && args+=(-o "$kv"); done <"$DIR/broker.overrides"
    fi
    local log="$dir/broker.log" deadline=$((SECONDS + START_TIMEOUT))
    while true; do
        local offset=0
        [[ -f "$log" ]] && offset=$(stat -c %s "$log")
        echo "==== $(date -u +%FT%TZ) start: $bin ${args[*]}" >>"$log"
        # setsid: the broker is not part of the caller's process group or terminal.
        setsid "$bin" "${args[@]}" >>"$log" 2>&1 </dev/null &
        local pid=$!
        echo "$pid" >"$dir/broker.pid"
        until grep -q "listening on 127.0.0.1:${!port}" <(tail -c +"$((offset + 1))" "$log"); do
            if ! kill -0 "$pid" 2>/dev/null; then break; fi
            if ((SECONDS >= deadline)); then
                kill -9 "$pid" 2>/dev/null || true
                echo "cluster.sh: broker $id not listening after ${START_TIMEOUT} s; see $log" >&2
                tail -5 "$log" >&2
                exit 1
            fi
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && return 0
        wait "$pid" 2>/dev/null || true
        # After a crash the old registration (an ephemeral node) lives until its ZooKeeper session
        # expires, and the port may be held for a moment: both are retried until the deadline.
        if grep -qiE "already registered by a live broker|in use" <(tail -c +"$((offset + 1))" "$log") && ((SECONDS < deadline)); then
            sleep 1
            continue
        fi
        rm -f "$dir/broker.pid"
        echo "cluster.sh: broker $id exited; see $log" >&2
        tail -5 "$log" >&2
        exit 1
    done
}

# Sends SIGNAL to broker ID and waits for it to exit (SIGKILL after STOP_TIMEOUT seconds).
signal_broker() {
    local id=$1 sig=$2 pid
    check_id "$id"
    pid=$(broker_pid "$id") || { rm -f "$DIR/broker$id/broker.pid"; return 0; }
    kill "-$sig" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            echo "cluster.sh: broker $id still running ${STOP_TIMEOUT} s after SIG$sig; killing it" >&2
            kill -9 "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    rm -f "$DIR/broker$id/broker.pid"
}

broker_id_arg() {
    [[ "${1:-}" == --broker && -n "${2:-}" ]] || usage
    echo "$2"
}

cmd=${1:-}
[[ -n "$cmd" ]] || usage
shift
[[ $# -ge 1 ]] || usage
DIR=$1
shift
if [[ "$cmd" == start ]]; then mkdir -p "$DIR"; fi
if [[ ! -d "$DIR" ]]; then
    [[ "$cmd" == stop ]] && exit 0  # nothing to stop
    echo "cluster.sh: no cluster in $DIR" >&2
    exit 1
fi
DIR=$(cd "$DIR" && pwd)

case "$cmd" in
start)
    brokers="" overrides=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
        --brokers) brokers=$2; shift 2 ;;
        -o) [[ "${2:-}" == *=* ]] || { echo "cluster.sh: -o expects key=value" >&2; exit 2; }
            overrides+=("$2"); shift 2 ;;
        *) usage ;;
        esac
    done
    if [[ -f "$DIR/cluster.env" ]]; then
        load_env
        if [[ -n "$brokers" && "$brokers" != "$BROKERS" ]]; then
            echo "cluster.sh: the cluster in $DIR has $BROKERS brokers (fixed at its first start)" >&2
            exit 2
        fi
    else
        brokers=${brokers:-3}
        [[ "$brokers" =~ ^[0-9]+$ ]] && ((brokers >= 1)) || { echo "cluster.sh: --brokers must be a positive number" >&2; exit 2; }
        configure "$brokers"
        load_env
    fi
    if ((${#overrides[@]} > 0)); then printf '%s\n' "${overrides[@]}" >"$DIR/broker.overrides"; fi
    bin=$(samsa_bin)
    "$ZK" start "$DIR/zk" --nodes 3 >/dev/null
    for ((i = 1; i <= BROKERS; i++)); do start_broker "$i" "$bin"; done
    bootstrap
    ;;
stop)
    [[ -f "$DIR/cluster.env" ]] || exit 0
    load_env
    for ((i = 1; i <= BROKERS; i++)); do signal_broker "$i" TERM; done
    if [[ -f "$DIR/zk/ensemble.env" ]]; then "$ZK" stop "$DIR/zk"; fi
    ;;
status)
    load_env
    for ((i = 1; i <= BROKERS; i++)); do
        port="PORT_$i"
        pid=$(broker_pid "$i" || echo -)
        state=up
        [[ "$pid" == - ]] && state=down
        echo "broker $i 127.0.0.1:${!port} pid $pid $state"
    done
    if [[ -f "$DIR/zk/ensemble.env" ]]; then "$ZK" status "$DIR/zk" | sed 's/^/zookeeper /'; fi
    ;;
bootstrap)
    load_env
    bootstrap
    ;;
kill)
    load_env
    id=$(broker_id_arg "$@")
    signal_broker "$id" KILL
    ;;
stop-broker)
    load_env
    id=$(broker_id_arg "$@")
    signal_broker "$id" TERM
    ;;
start-broker)
    load_env
    id=$(broker_id_arg "$@")
    check_id "$id"
    bin=$(samsa_bin)
    "$ZK" start "$DIR/zk" --nodes 3 >/dev/null
    start_broker "$id" "$bin"
    ;;
*) usage ;;
esac
