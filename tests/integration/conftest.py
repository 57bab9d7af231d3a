"""Fixtures for the SwiftROMA integration suite.

* ``romad_factory(engine=..., **kw)`` -> started :class:`romatest.Romad`; every server it made is
  stopped with SIGTERM at teardown (SIGKILL by PID after 10 s) and, unless the test set
  ``server.expect_clean_exit = False``, its exit status must be 0.  Logs are printed at teardown
  (pytest shows them for failing tests only).
* ``romad``      -> one started TokyoCabinet server (function scope).
* ``romad_any``  -> one started server, parametrized over the ``tc`` and ``memory`` engines.
"""
from __future__ import annotations

import os
import signal

import pytest

import romatest
from romatest import ROMAD_BIN, Romad


def pytest_sessionstart(session):
    if not (os.path.isfile(ROMAD_BIN) and os.access(ROMAD_BIN, os.X_OK)):
        pytest.exit(f"romad binary not found at {ROMAD_BIN}: run `swift build` "
                    f"or set ROMAD_BIN", returncode=4)


def pytest_sessionfinish(session, exitstatus):
    romatest.kill_all_live()


def _teardown_servers(servers):
    problems = []
    for s in servers:
        if s.proc is None:
            continue
        try:
            rc = s.stop(signal.SIGTERM, timeout=10)
        except AssertionError as e:  # did not stop; already SIGKILLed by PID
            problems.append(str(e))
            rc = None
        if s.expect_clean_exit and rc is not None and rc != 0:
            problems.append(f"{s!r} exited with status {rc} after SIGTERM (expected 0)")
        print(f"\n===== log of {s!r} =====\n{s.all_logs()}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def romad_factory(tmp_path):
    made = []
    counter = [0]

    def make(engine: str = "tc", start: bool = True, **kw) -> Romad:
        counter[0] += 1
        workdir = kw.pop("workdir", tmp_path / f"srv{counter[0]}")
        s = Romad(workdir, engine=engine, **kw)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    _teardown_servers(made)


@pytest.fixture
def romad(romad_factory):
    return romad_factory("tc")


@pytest.fixture(params=["tc", "memory"])
def engine(request):
    return request.param


@pytest.fixture
def romad_any(romad_factory, engine):
    return romad_factory(engine)


@pytest.fixture(scope="module", params=["tc", "memory"])
def shared_romad(request, tmp_path_factory):
    """One server per engine shared by a whole module; tests must use unique keys."""
    s = Romad(tmp_path_factory.mktemp(f"shared-{request.param}"), engine=request.param)
    s.start()
    yield s
    _teardown_servers([s])
