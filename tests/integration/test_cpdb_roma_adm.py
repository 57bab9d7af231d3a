"""roma-adm <command> [port] (spec R8.3) against a real romad.

ROMA_ADM_BIN (default <repo>/.build/debug/roma-adm) selects the binary.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from romatest import REPO, free_port

ROMA_ADM_BIN = os.environ.get("ROMA_ADM_BIN") or str(REPO / ".build" / "debug" / "roma-adm")

if not (os.path.isfile(ROMA_ADM_BIN) and os.access(ROMA_ADM_BIN, os.X_OK)):
    pytest.skip(f"roma-adm not found at {ROMA_ADM_BIN}: build it or set ROMA_ADM_BIN", allow_module_level=True)


def adm(*args, stdin=""):
    return subprocess.run([ROMA_ADM_BIN, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=30)


def test_commands_and_replies(romad):
    r = adm("version", romad.port)
    assert r.returncode == 0 and r.stdout == "VERSION ROMA-1.3.0\n", r
    r = adm("stat storage.divnum", romad.port)
    assert r.returncode == 0 and r.stdout == "storages[roma].storage.divnum 10\nEND\n", r
    r = adm("set adm_key 0 0 5", romad.port, stdin="hello\n")
    assert r.returncode == 0 and r.stdout == "Please input value.\nSTORED\n", r
    assert romad.get(b"adm_key") == b"hello"
    r = adm("nosuchcommand", romad.port)
    assert r.returncode == 1 and "is not roma command" in r.stdout, r


def test_bad_arguments_and_unreachable_node():
    r = adm("version", "port")
    assert r.returncode != 0 and "should be Interger" in r.stderr, r
    port = free_port()
    r = adm("--host", "127.0.0.1", "version", port)
    assert r.returncode == 1 and f"127.0.0.1:{port}" in r.stderr and "refused" in r.stderr, r


def test_balse_answers_yes(romad):
    r = adm("balse", romad.port)
    assert r.returncode == 0, r
    assert "Are you sure?(yes/no)" in r.stdout and f'{{"{romad.node_id}"=>"BYE"}}' in r.stdout, r
    assert romad.wait_exit(10) == 0
