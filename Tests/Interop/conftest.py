"""Fixtures for the interop suite: real `samsa broker` processes on free ports with temporary
data directories.

- `broker`: one broker per test module (module scope). A module can set
  BROKER_OVERRIDES = {"key": "value", ...} to pass `-o key=value` settings.
- `broker_factory`: function scope; `broker_factory(**overrides)` starts a fresh broker (own
  port, own data dir) for tests that kill/restart it.

The binary comes from $SAMSA_BIN, defaulting to <repo>/.build/debug/samsa.
When a test fails, the tail of every live broker's stderr is attached to the report.
"""
from __future__ import annotations

import pytest

from samsa_interop import Broker


@pytest.fixture(scope="module")
def broker(request, tmp_path_factory):
    overrides = getattr(request.module, "BROKER_OVERRIDES", {})
    base = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    b = Broker(base / "data", base / "broker.stderr.log", overrides=overrides)
    b.start()
    yield b
    b.close()


@pytest.fixture
def broker_factory(tmp_path):
    made: list[Broker] = []

    def make(**overrides) -> Broker:
        n = len(made)
        b = Broker(tmp_path / f"data{n}", tmp_path / f"broker{n}.stderr.log", overrides=overrides)
        made.append(b)
        return b.start()

    yield make
    for b in made:
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for b in list(Broker.instances):
            lines = b.stderr_all().splitlines()
            state = "running" if b.running else f"exited {b.proc.returncode if b.proc else '-'}"
            report.sections.append((f"samsa broker :{b.port} ({state}) stderr, last 60 lines",
                                    "\n".join(lines[-60:])))


def pytest_configure(config):
    # kafka-python 3.0.12 loads its protocol schemas with a deprecated importlib API, once per
    # message type; that noise is the library's, not the broker's.
    config.addinivalue_line("filterwarnings", "ignore:(read_text|open_text) is deprecated:DeprecationWarning")
