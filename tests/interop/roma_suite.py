#!/usr/bin/env python3
"""ROMA 1.3's own test suite (its `test/*.rb`), run against romad nodes instead of Ruby ones.

ROMA's tests start a 2-node cluster (`localhost_11211`, `localhost_11212`) with ROMA's `mkroute`
(YAML route files) and `bin/romad … --config test/config4test.rb`, talk to it with the Ruby client
(roma-client) and raw sockets, and stop it with `balse`. This script copies ROMA's tree, puts a
stand-in for `bin/romad` that runs SwiftROMA's romad with the same arguments (ROMA's `config.rb`
included), and a stand-in `bin/cpdb` that runs ours, then runs the chosen test files.

With RUBY_PORTS=11211 (for example) the node on that port stays Ruby ROMA: the same tests then
run on a mixed cluster, one Ruby node and one romad node.

Not part of `make test`: it needs ROMA's Ruby source and the Ruby client, which only the
project's fetch tool brings (../../shared/reference/ruby-roma-setup/README.md: prepare-roma.sh,
and the one-line change that makes ROMA listen on its own address):

    fetch github:roma/roma-ruby-client  →  git -C <mirror> archive HEAD | tar -x -C /work/roma-ruby-client
    ROMA_SRC=/work/roma-ruby ROMA_CLIENT_SRC=/work/roma-ruby-client ROMAD_BIN=$PWD/.build/release/romad \\
        python3 tests/interop/roma_suite.py [test_rclient test_protocol …]

Each file's result is printed; failures listed in EXPECTED (deliberate differences, or ROMA
features romad does not have) are reported as such. Exit status 1 on any other failure.
Every process started (found by the run directory in its command line) is killed at the end.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from romatest import pids_with_in_cmdline  # noqa: E402  (standard library only)

ROMA_SRC = os.environ.get("ROMA_SRC", "/work/roma-ruby")
CLIENT_SRC = os.environ.get("ROMA_CLIENT_SRC", "/work/roma-ruby-client")
ROMAD = os.path.abspath(os.environ.get("ROMAD_BIN", ".build/release/romad"))
RUBY_PORTS = [p for p in os.environ.get("RUBY_PORTS", "").replace(",", " ").split() if p]
DEFAULT_FILES = ["test_rclient", "test_protocol", "test_mhash", "test_cpdata", "test_cpdb", "test_new_func", "test_logshift",
                 "test_writebehind", "test_replication"]

# test name -> why it fails against romad, on purpose or for a feature romad does not have.
EXPECTED = {
    "test_gets_zero_arguments": "memcached's conformance suite (memccapable 'ascii gets') requires an error for "
                                "`gets` without a key; ROMA answers END (issue #10: memcached's answer wins)",
    "test_set_too_much_arguments": "`set key 0 0 5 0` is stored, as memcached 1.6 does (issue #10); ROMA refuses it",
    "test_stat_failover": "romad enables failover as soon as every node answered; ROMA at its first 10 s timer tick",
    "test_romad_option": "romad -h prints its own (longer) usage, not Ruby OptionParser's text",
    "test_waiting_node": "with --disabled_cmd_protect romad does not wait for its peers, so it never logs ROMA's "
                         "'I'm waiting for booting' line (it does while it waits)",
    "test_wb2_alist_commands": "ROMA's alist plugin (PLUGIN_FILES) is not built: its commands are unknown here",
    "test_wb2_map_commands": "ROMA's map plugin (PLUGIN_FILES) is not built: its commands are unknown here",
    "test_wb2_map_commands2": "ROMA's map plugin (PLUGIN_FILES) is not built: its commands are unknown here",
    "test_rc_switch_replication_default": "expects run_existing_data_replication to be still true right after "
                                          "`switch_replication true <nid> all` on an empty cluster: romad's copy of "
                                          "no records is over by then (ROMA's walks every vnode with pauses)",
    "test_st_class_grn": "no Groonga engine: romad refuses GroongaStorage in config.rb",
    "test_st_class_tcmem": "TCMemStorage runs on romad's memory engine, whose stat says RubyHashStorage",
}

ROMAD_STAND_IN = """#!/usr/bin/env ruby
# Stand-in for ROMA's romad in ROMA's own test suite (tests/interop/roma_suite.py): runs
# SwiftROMA's romad with the same arguments, or Ruby ROMA's for the ports in RUBY_PORTS.
port = (i = ARGV.index('-p')) ? ARGV[i + 1] : nil
if ENV.fetch('RUBY_PORTS', '').split(/[ ,]/).include?(port)
  exec(RbConfig.ruby, File.join(__dir__, 'romad.ruby'), *ARGV)
else
  exec(ENV.fetch('ROMAD_BIN'), *ARGV)
end
"""

CPDB_STAND_IN = """#!/bin/sh
# Stand-in for ROMA's cpdb in ROMA's own test suite: SwiftROMA's cpdb, or Ruby ROMA's for a
# port in RUBY_PORTS.
for p in $(echo "$RUBY_PORTS" | tr ',' ' '); do
  [ "$p" = "$1" ] && exec ruby "$(dirname "$0")/cpdb.ruby" "$@"
done
exec "$(dirname "$ROMAD_BIN")/cpdb" "$@"
"""

SHIMS = {
    # roma_test_utils requires 'shell', which left Ruby's standard library in 3.0; it uses none of it.
    "shell.rb": "# empty: roma_test_utils only requires it\n",
    # roma-client 0.4.5 still calls Kernel#timeout in gets_sender (gone in Ruby 3).
    "kernel_timeout.rb": "require 'timeout'\nmodule Kernel\n  def timeout(sec, &blk) Timeout.timeout(sec, &blk) end\nend\n",
}


def prepare(base):
    tree = os.path.join(base, "roma")
    for part in ("lib", "bin", "test"):
        shutil.copytree(os.path.join(ROMA_SRC, part), os.path.join(tree, part), symlinks=True)
    os.rename(os.path.join(tree, "bin", "romad"), os.path.join(tree, "bin", "romad.ruby"))
    os.rename(os.path.join(tree, "bin", "cpdb"), os.path.join(tree, "bin", "cpdb.ruby"))
    for name, text in (("romad", ROMAD_STAND_IN), ("cpdb", CPDB_STAND_IN)):
        path = os.path.join(tree, "bin", name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    shim = os.path.join(base, "shim")
    os.makedirs(shim)
    for name, text in SHIMS.items():
        with open(os.path.join(shim, name), "w") as f:
            f.write(text)
    return tree, shim


def run_file(tree, shim, name, run_dir):
    os.makedirs(run_dir)
    env = dict(os.environ, ROMAD_BIN=ROMAD, RUBY_PORTS=" ".join(RUBY_PORTS))
    argv = ["ruby", "-I", shim, "-I", os.path.join(CLIENT_SRC, "lib"), "-I", os.path.join(tree, "lib"),
            "-I", os.path.join(tree, "test"), "-r", "roma/routing/routing_data", "-r", "kernel_timeout",
            os.path.join(tree, "test", name + ".rb")]
    start = time.monotonic()
    try:
        r = subprocess.run(argv, cwd=run_dir, env=env, capture_output=True, text=True, timeout=1200)
        out = r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + "\n[timed out after 1200 s]"
    with open(os.path.join(run_dir, "test-output.txt"), "w") as f:
        f.write(out)
    m = re.search(r"(\d+) tests, (\d+) assertions, (\d+) failures, (\d+) errors", out)
    failed = re.findall(r"^(?:Failure|Error): (\w+)\(", out, re.M)
    return m, failed, time.monotonic() - start, out


def main():
    files = sys.argv[1:] or DEFAULT_FILES
    for path, what in ((ROMA_SRC, "ROMA_SRC"), (os.path.join(CLIENT_SRC, "lib", "roma", "client", "rclient.rb"), "ROMA_CLIENT_SRC"),
                       (ROMAD, "ROMAD_BIN")):
        if not os.path.exists(path):
            sys.exit(f"{what}: {path} not found (see the docstring)")
    base = tempfile.mkdtemp(prefix="roma-suite-")
    unexpected = []
    try:
        tree, shim = prepare(base)
        mode = f"Ruby ROMA on {', '.join(RUBY_PORTS)}, romad on the others" if RUBY_PORTS else "every node romad"
        print(f"ROMA's own tests against {ROMAD} ({mode})")
        for name in files:
            m, failed, secs, out = run_file(tree, shim, name, os.path.join(base, "run-" + name))
            for pid in pids_with_in_cmdline(base):
                os.kill(pid, signal.SIGKILL)
            if not m:
                print(f"{name}: no result ({secs:.0f} s)\n{out[-3000:]}")
                unexpected.append(name)
                continue
            tests, asserts, fails, errors = map(int, m.groups())
            known = [t for t in failed if t in EXPECTED]
            other = [t for t in failed if t not in EXPECTED]
            print(f"{name}: {tests} tests, {asserts} assertions, {tests - len(set(failed))} passed, "
                  f"{len(known)} failed as expected, {len(other)} unexpected ({secs:.0f} s)")
            for t in known:
                print(f"    expected: {t}: {EXPECTED[t]}")
            for t in other:
                print(f"    UNEXPECTED: {t}")
                block = re.search(rf"^(?:Failure|Error): {t}\(.*?(?=^={{20,}})", out, re.M | re.S)
                print("      " + (block.group(0) if block else "").strip().replace("\n", "\n      ")[:2500])
            unexpected += other
    finally:
        for pid in pids_with_in_cmdline(base):
            os.kill(pid, signal.SIGKILL)
        if os.environ.get("KEEP"):
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print("unexpected failures: " + (", ".join(unexpected) if unexpected else "none"))
    sys.exit(1 if unexpected else 0)


if __name__ == "__main__":
    main()
