#!/usr/bin/env bash
# Regenerates the protocol code from Kafka's JSON schemas (../shared/kafka-reference).
#   scripts/generate.sh            write into Sources/ and Tests/ (commit the result)
#   scripts/generate.sh --check    generate into a temporary folder and fail if it differs
set -euo pipefail
cd "$(dirname "$0")/.."
schemas="${SAMSA_KAFKA_REFERENCE:-../shared/kafka-reference}"
src=Sources/KafkaProtocol/Generated
tests=Tests/KafkaProtocolTests/Generated
if [[ "${1:-}" == "--check" ]]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    swift run -q SamsaCodegen --schemas "$schemas" --output "$tmp/src" --test-output "$tmp/tests"
    if ! diff -r "$tmp/src" "$src" >/dev/null || ! diff -r "$tmp/tests" "$tests" >/dev/null; then
        diff -r "$tmp/src" "$src" | head -40 || true
        diff -r "$tmp/tests" "$tests" | head -40 || true
        echo "generated protocol code is out of date: run scripts/generate.sh and commit the result" >&2
        exit 1
    fi
    echo "generated protocol code is up to date"
else
    swift run -q SamsaCodegen --schemas "$schemas" --output "$src" --test-output "$tests"
fi
