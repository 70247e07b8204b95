#!/usr/bin/env bash
# Installs the C libraries the build links (zlib, zstd, lz4, snappy) and what the interop tests drive the
# broker with: Debian's kcat, and a Python virtualenv (.venv) with PyPI's confluent-kafka, kafka-python and
# pytest (pinned in Tests/Interop/requirements.txt); and Debian's zookeeper with a headless JRE (the
# ZooKeeper client and store tests start real ensembles with scripts/zookeeper.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[[ "$(id -u)" -ne 0 ]] && sudo="sudo"
# Debian packages: kcat, and the reference compression libraries the KafkaCompression module links
# (zlib, zstd, lz4, snappy; see Sources/C*/module.modulemap). Installed only when one is missing.
debs=(kcat zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev)
missing=()
for deb in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" || missing+=("$deb")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
scripts/zookeeper.sh install
if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r Tests/Interop/requirements.txt
