#!/usr/bin/env bash
# Installs what the interop tests drive the broker with: Debian's kcat, and a Python virtualenv
# (.venv) with PyPI's confluent-kafka, kafka-python and pytest (pinned in Tests/Interop/requirements.txt),
# and Debian's zookeeper with a headless JRE (the ZooKeeper client and store tests start real ensembles
# with scripts/zookeeper.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[[ "$(id -u)" -ne 0 ]] && sudo="sudo"
if ! command -v kcat >/dev/null 2>&1; then
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends kcat
fi
scripts/zookeeper.sh install
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r Tests/Interop/requirements.txt
