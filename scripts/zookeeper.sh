#!/usr/bin/env bash
# A local Apache ZooKeeper ensemble (Debian's `zookeeper` package, 3.8) for tests and for trying a
# Samsa cluster by hand. Everything lives in the folder you give it; ports are free loopback ports
# chosen at the first start and kept in DIR/ensemble.env, so a node can be stopped and started again.
#
#   scripts/zookeeper.sh start DIR [--nodes 1|3]   configure (first time) and start every node; waits
#                                                  until the ensemble serves, prints the connect string
#   scripts/zookeeper.sh start DIR --node ID       start one node again (waits until it listens)
#   scripts/zookeeper.sh stop DIR [--node ID]      stop every node, or one
#   scripts/zookeeper.sh status DIR                one line per node: id, client port, pid, mode
#   scripts/zookeeper.sh connect DIR               print the connect string (127.0.0.1:p1,127.0.0.1:p2,...)
#   scripts/zookeeper.sh cli DIR [zkCli args...]   Debian's zkCli.sh against the ensemble
#   scripts/zookeeper.sh install                   only install zookeeper + a JRE when missing
#
# Installs Debian's `zookeeper` and a headless JRE when they are missing (apt-get update first).
# Each server runs as `java -cp ... org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg` with
# a 128 MB heap, the admin server off, forceSync off and empty containers removed every 500 ms
# (a local development ensemble, not production).
# Its log is DIR/node<ID>/server.log.
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

ZK_JAR=/usr/share/java/zookeeper.jar
ZK_CLI=/usr/share/zookeeper/bin/zkCli.sh

install_zookeeper() {
    if [[ -f "$ZK_JAR" && -x "$ZK_CLI" ]] && command -v java >/dev/null 2>&1; then return 0; fi
    local sudo=""
    [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
    echo "zookeeper.sh: installing Debian's zookeeper and a headless JRE" >&2
    $sudo apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends zookeeper default-jre-headless >&2
}

# A free TCP port on 127.0.0.1 (the kernel picks it; released right away).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Sends a four-letter command to 127.0.0.1:PORT and prints the answer (empty when nothing listens).
four_letter() {
    local port=$1 cmd=$2
    (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf '%s' "$cmd" >&3 && timeout 2 cat <&3) 2>/dev/null || true
}

load_env() {
    [[ -f "$DIR/ensemble.env" ]] || { echo "zookeeper.sh: no ensemble in $DIR (run start first)" >&2; exit 1; }
    # shellcheck disable=SC1091
    source "$DIR/ensemble.env"
}

configure() {
    local nodes=$1
    mkdir -p "$DIR"
    {
        echo "NODES=$nodes"
        for ((i = 1; i <= nodes; i++)); do
            echo "CLIENT_PORT_$i=$(free_port)"
            echo "QUORUM_PORT_$i=$(free_port)"
            echo "ELECTION_PORT_$i=$(free_port)"
        done
    } >"$DIR/ensemble.env"
    load_env
    for ((i = 1; i <= NODES; i++)); do
        local node="$DIR/node$i" cport="CLIENT_PORT_$i"
        mkdir -p "$node/data"
        echo "$i" >"$node/data/myid"
        {
            echo "tickTime=500"
            echo "initLimit=20"
            echo "syncLimit=10"
            echo "minSessionTimeout=1000"
            echo "maxSessionTimeout=60000"
            echo "dataDir=$node/data"
            echo "clientPortAddress=127.0.0.1"
            echo "clientPort=${!cport}"
            echo "admin.enableServer=false"
            echo "4lw.commands.whitelist=srvr,ruok"
            echo "forceSync=no"
            echo "preAllocSize=1024"
            echo "snapCount=10000"
            echo "autopurge.purgeInterval=0"
            echo "reconfigEnabled=false"
            if ((NODES > 1)); then
                echo "cnxTimeout=1000"
                for ((j = 1; j <= NODES; j++)); do
                    local q="QUORUM_PORT_$j" e="ELECTION_PORT_$j"
                    echo "server.$j=127.0.0.1:${!q}:${!e}"
                done
            fi
        } >"$node/zoo.cfg"
    done
}

node_pid() {
    local pidfile="$DIR/node$1/server.pid"
    [[ -f "$pidfile" ]] || return 1
    local pid
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

classpath() {
    local cp="$ZK_JAR"
    # The jar's manifest names its dependencies; add a logging backend when Debian ships one.
    [[ -f /usr/share/java/slf4j-simple.jar ]] && cp="$cp:/usr/share/java/slf4j-simple.jar"
    echo "$cp"
}

start_node() {
    local i=$1
    if node_pid "$i" >/dev/null; then return 0; fi
    local node="$DIR/node$i"
    [[ -f "$node/zoo.cfg" ]] || { echo "zookeeper.sh: no node $i in $DIR" >&2; exit 1; }
    # setsid: the server is not part of the caller's process group or terminal.
    setsid java -Xmx128m -Xms32m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dzookeeper.admin.enableServer=false -Dzookeeper.jmx.log4j.disable=true -Dznode.container.checkIntervalMs=500 \
        -Dorg.slf4j.simpleLogger.showDateTime=true \
        -cp "$(classpath)" org.apache.zookeeper.server.quorum.QuorumPeerMain "$node/zoo.cfg" \
        >"$node/server.log" 2>&1 </dev/null &
    echo $! >"$node/server.pid"
}

wait_listening() {
    local i=$1 port="CLIENT_PORT_$1" deadline=$((SECONDS + 30))
    until [[ "$(four_letter "${!port}" ruok)" == imok ]]; do
        if ! node_pid "$i" >/dev/null; then
            echo "zookeeper.sh: node $i exited; see $DIR/node$i/server.log" >&2
            tail -5 "$DIR/node$i/server.log" >&2 || true
            exit 1
        fi
        ((SECONDS < deadline)) || { echo "zookeeper.sh: node $i not listening after 30 s" >&2; exit 1; }
        sleep 0.2
    done
}

node_mode() {
    local port="CLIENT_PORT_$1"
    four_letter "${!port}" srvr | sed -n 's/^Mode: //p'
}

wait_serving() {
    local deadline=$((SECONDS + 60))
    for ((i = 1; i <= NODES; i++)); do
        until [[ -n "$(node_mode "$i")" ]]; do
            node_pid "$i" >/dev/null || { echo "zookeeper.sh: node $i exited; see $DIR/node$i/server.log" >&2; exit 1; }
            ((SECONDS < deadline)) || { echo "zookeeper.sh: ensemble in $DIR not serving after 60 s" >&2; exit 1; }
            sleep 0.2
        done
    done
}

connect_string() {
    local s=""
    for ((i = 1; i <= NODES; i++)); do
        local port="CLIENT_PORT_$i"
        s="${s:+$s,}127.0.0.1:${!port}"
    done
    echo "$s"
}

stop_node() {
    local i=$1 pid
    pid=$(node_pid "$i") || { rm -f "$DIR/node$i/server.pid"; return 0; }
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$DIR/node$i/server.pid"
}

cmd=${1:-}
[[ -n "$cmd" ]] || usage
shift
if [[ "$cmd" == install ]]; then install_zookeeper; exit 0; fi
[[ $# -ge 1 ]] || usage
DIR=$1
shift
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

case "$cmd" in
start)
    nodes=1 node=""
    while [[ $# -gt 0 ]]; do
        case "$1" in
        --nodes) nodes=$2; shift 2 ;;
        --node) node=$2; shift 2 ;;
        *) usage ;;
        esac
    done
    [[ "$nodes" == 1 || "$nodes" == 3 ]] || { echo "zookeeper.sh: --nodes must be 1 or 3" >&2; exit 2; }
    install_zookeeper
    if [[ -f "$DIR/ensemble.env" ]]; then load_env; else configure "$nodes"; fi
    if [[ -n "$node" ]]; then
        start_node "$node"
        wait_listening "$node"
    else
        for ((i = 1; i <= NODES; i++)); do start_node "$i"; done
        for ((i = 1; i <= NODES; i++)); do wait_listening "$i"; done
        wait_serving
        connect_string
    fi
    ;;
stop)
    load_env
    if [[ "${1:-}" == --node ]]; then
        stop_node "$2"
    else
        # All at once: each server takes a moment to exit.
        for ((i = 1; i <= NODES; i++)); do stop_node "$i" & done
        wait
    fi
    ;;
status)
    load_env
    for ((i = 1; i <= NODES; i++)); do
        port="CLIENT_PORT_$i"
        pid=$(node_pid "$i" || echo -)
        mode=$(node_mode "$i")
        echo "node $i port ${!port} pid $pid mode ${mode:-down}"
    done
    ;;
connect)
    load_env
    connect_string
    ;;
cli)
    load_env
    install_zookeeper
    ZOO_LOG_DIR="$DIR" "$ZK_CLI" -server "$(connect_string)" "$@"
    ;;
*) usage ;;
esac
