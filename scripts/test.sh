#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the real Kafka clients the interop tests use,
# checks the generated protocol code against the schemas, builds a package that depends on SamsaClient,
# runs the Swift tests, then the interop tests (real `samsa broker` processes driven by kcat,
# confluent-kafka and kafka-python).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
scripts/generate.sh --check
swift build --build-tests
# SamsaClient as another package's dependency: no unsafeFlags (SwiftPM refuses them in versioned
# dependencies), and a fixture package that depends on it by path builds (own scratch path).
if grep -nE "\.unsafeFlags\(" Package.swift; then echo "Package.swift must not use unsafeFlags" >&2; exit 1; fi
swift build --package-path Tests/Fixtures/ClientConsumer --scratch-path .build-fixture
timeout 1800 swift test --skip-build  # a hung test fails CI instead of eating its budget
# Every interop test has a deadline: a regression fails (and its brokers are stopped) instead of
# hanging CI.
.venv/bin/python -m pytest -q -ra --timeout=600 Tests/Interop "$@"
