"""romad --config: ROMA's config.rb or a YAML file with its setting names (R9.1); flags override it; -d logs to LOG_PATH."""
import os
import signal
import subprocess

import pytest

from romatest import ROMAD_BIN, Romad, free_port, pids_with_in_cmdline, proc_field, raw, start_daemon, wait_for


def test_config_file_sets_name_divnum_path_and_engine_options(tmp_path):
    data = tmp_path / "cfgdata"
    cfg = tmp_path / "roma.yaml"
    cfg.write_text(
        'VERSION: "1.3.0"\n'
        "DEFAULT_NAME: CLUSTER_A\n"
        "STORAGE_CLASS: TCStorage\n"
        f"STORAGE_PATH: {data}\n"
        "STORAGE_DIVNUM: 4\n"
        'STORAGE_OPTION: "bnum=5003#opts=l"\n'
        "LOG_LEVEL: info\n"
        "CONNECTION_EXPTIME: 0\n"          # a ROMA setting this node does not use: accepted
    )
    s = Romad(tmp_path / "w", extra_args=["--config", str(cfg)], storage_path=data)
    s.start()
    try:
        assert s.raw(b"whoami\r\n") == b"CLUSTER_A\r\n"
        got = s.raw(b"stat storage\\.(divnum|option|st_class)\r\n")
        assert got == (b"storages[roma].storage.st_class TCStorage\r\n"
                       b"storages[roma].storage.divnum 4\r\n"
                       b"storages[roma].storage.option bnum=5003#opts=l\r\nEND\r\n"), got
        files = sorted(p.name for p in (data / s.node_id / "roma").glob("*.tc"))
        assert files == ["0.tc", "1.tc", "2.tc", "3.tc"]
        cfgpath = s.raw(b"stat config_path\r\n")
        assert cfgpath == b"stats.config_path " + str(cfg).encode() + b"\r\nEND\r\n"
    finally:
        assert s.stop() == 0


def test_flags_override_the_config_file(tmp_path):
    cfg = tmp_path / "roma.yaml"
    cfg.write_text("DEFAULT_NAME: FROM_FILE\nSTORAGE_DIVNUM: 4\n")
    s = Romad(tmp_path / "w", extra_args=["--config", str(cfg), "-n", "FROM_FLAG", "--divnum", "3"])
    s.start()
    try:
        assert s.raw(b"whoami\r\n") == b"FROM_FLAG\r\n"
        assert s.raw(b"stat storage\\.divnum\r\n") == b"storages[roma].storage.divnum 3\r\nEND\r\n"
    finally:
        assert s.stop() == 0


def test_bad_config_files_are_refused_with_a_clear_message(tmp_path):
    cases = {
        'VERSION: "1.2.0"\n': b"config.rb's version is differ from current ROMA version",
        "STORAGE_DIVNUM: ten\n": b"STORAGE_DIVNUM must be an integer",
        "STORAGE_CLASS: Groonga\n": b"unknown storage",
        'STORAGE_OPTION: "foo=1"\n': b"Syntax error, unexpected option foo",
        "- just\n- a list\n": b"expected a mapping",
    }
    for i, (text, message) in enumerate(cases.items()):
        cfg = tmp_path / f"bad{i}.yaml"
        cfg.write_text(text)
        r = subprocess.run([ROMAD_BIN, "127.0.0.1", "-p", "1", "--config", str(cfg), "--storage-path", str(tmp_path)],
                           capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        assert r.returncode != 0, (text, r)
        assert message in r.stdout + r.stderr, (text, r.stderr)
    r = subprocess.run([ROMAD_BIN, "127.0.0.1", "--config", str(tmp_path / "missing.yaml")],
                       capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and b"cannot read config file" in r.stdout + r.stderr


# --------------------------------------------------------------------------
# ROMA's own config.rb, and a daemon that logs where ROMA's does
# --------------------------------------------------------------------------
ROMA_CONFIG_RB = """require 'roma/storage/tc_storage'

module Roma

  module Config
    VERSION = "1.3.0"

    DEFAULT_PORT = 12000
    DEFAULT_NAME = 'RUBYCONF'
    DEFAULT_LOST_ACTION = :no_action
    ROUTING_FAIL_CNT_THRESHOLD = 15
    LOG_SHIFT_SIZE = 1024 * 1024 * 10
    LOG_PATH = '{run}/logs'
    LOG_LEVEL = :info
    RTTABLE_PATH = '{run}/routing'
    CONNECTION_CONTINUOUS_LIMIT = '200:30:300'
    STORAGE_CLASS = Roma::Storage::TCStorage
    STORAGE_DIVNUM = 3
    STORAGE_PATH = '{run}/data'
    STORAGE_OPTION = 'bnum=5003#opts=l' # a '#' in quotes is not a comment
    STORAGE_DELMARK_EXPTIME = 60 * 60 * 24 * 5
    DATACOPY_STREAM_COPY_WAIT_PARAM = 0.001
    PLUGIN_FILES = ['plugin_storage.rb',
                    'plugin_alist.rb']

    def self.get_stat
      ret = {{}}
      ret['config.DEFAULT_LOST_ACTION'] = DEFAULT_LOST_ACTION
      ret
    end
  end
end
"""


def test_roma_config_rb_as_written_by_mkconfig_runs_a_daemon_that_logs_to_log_path(tmp_path):
    run = tmp_path / "run"
    for d in ("logs", "routing", "data"):
        (run / d).mkdir(parents=True)
    cfg = run / "config.rb"
    cfg.write_text(ROMA_CONFIG_RB.format(run=run))
    port = free_port()
    nid = f"127.0.0.1_{port}"
    try:
        start_daemon(cfg, port, whoami=b"RUBYCONF")
        got = raw(port, b"stat storage\\.(divnum|option|st_class)|config\\.(LOG_PATH|RTTABLE_PATH)|lost_action\r\n")
        assert b"storages[roma].storage.st_class TCStorage\r\n" in got, got
        assert b"storages[roma].storage.divnum 3\r\n" in got, got
        assert b"storages[roma].storage.option bnum=5003#opts=l\r\n" in got, got
        assert f"config.LOG_PATH {run}/logs\r\n".encode() in got, got
        assert f"config.RTTABLE_PATH {run}/routing\r\n".encode() in got, got
        assert b"routing.lost_action no_action\r\n" in got, got
        assert sorted(p.name for p in (run / "data" / nid / "roma").glob("*.tc")) == ["0.tc", "1.tc", "2.tc"]
        assert raw(port, b"set k 0 0 1\r\nv\r\n") == b"STORED\r\n"
        log = run / "logs" / f"{nid}.log"
        wait_for(lambda: log.exists() and "listening on" in log.read_text(), 10, f"{log} to hold the start-up lines")
        # ROMA's way to stop a node.
        assert raw(port, b"shutdown_self\r\nyes\r\n", until=b"BYE\r\n").endswith(b"BYE\r\n")
        wait_for(lambda: not pids_with_in_cmdline(str(cfg)), 20, "the daemon to exit")
        assert "stopped" in log.read_text()
        assert not (run / "data" / nid / "roma" / "lock").exists()
    finally:
        for pid in pids_with_in_cmdline(str(cfg)):
            os.kill(pid, signal.SIGKILL)


def test_a_config_rb_value_romad_cannot_evaluate_is_refused_for_a_setting_it_uses(tmp_path):
    cfg = tmp_path / "config.rb"
    cfg.write_text("module Roma\n  module Config\n    CONNECTION_USE_EPOLL = Integer(ENV['AGE'])\n"
                   "    STORAGE_PATH = File.expand_path('~/roma')\n  end\nend\n")
    r = subprocess.run([ROMAD_BIN, "127.0.0.1", "-p", "1", "--config", str(cfg)],
                       capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert f"{cfg}:4: cannot evaluate STORAGE_PATH = File.expand_path('~/roma')".encode() in r.stderr, r.stderr


def test_a_daemon_whose_log_path_cannot_be_written_says_so_before_detaching(tmp_path):
    cfg = tmp_path / "config.rb"
    cfg.write_text(f"module Roma\n  module Config\n    LOG_PATH = '{tmp_path}/no/such/dir'\n  end\nend\n")
    r = subprocess.run([ROMAD_BIN, "127.0.0.1", "-p", str(free_port()), "-d", "--config", str(cfg),
                        "--storage-path", str(tmp_path)], capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert b"cannot open the log file" in r.stderr and b"no/such/dir" in r.stderr, r.stderr
    assert not pids_with_in_cmdline(str(cfg))


def test_set_log_level_changes_what_the_running_node_logs(tmp_path):
    s = Romad(tmp_path / "w", engine="memory")
    s.start()
    try:
        assert s.raw(b"stat log_level\r\n") == b"stats.log_level info\r\nEND\r\n"
        assert s.raw(b"set_log_level\r\n") == b"CLIENT_ERROR number of arguments (0 for 1)\r\n"
        assert s.raw(b"set_log_level loud\r\n") == b"CLIENT_ERROR no match log-level string\r\n"
        assert s.raw(b"set_log_level ERROR\r\n") == b"STORED\r\n"
        assert s.raw(b"stat log_level\r\n") == b"stats.log_level error\r\nEND\r\n"
        assert s.raw(b"createhash quiet\r\n").endswith(b'"CREATED"}\r\n')    # logged at info: not shown
        assert s.raw(b"set_log_level warn\r\n") == b"STORED\r\n"
        assert s.raw(b"stat log_level\r\n") == b"stats.log_level warn\r\nEND\r\n"
        assert s.raw(b"set_log_level info\r\n") == b"STORED\r\n"
        assert s.raw(b"createhash loud\r\n").endswith(b'"CREATED"}\r\n')
        wait_for(lambda: "createhash loud" in s.log_text(), 5, "the info line after set_log_level info")
        assert "createhash quiet" not in s.log_text()
    finally:
        assert s.stop() == 0


def _open_files_soft_limit(pid: int) -> int:
    return proc_field(pid, "limits", "Max open files", 3)


def test_descriptor_table_size_raises_the_open_file_limit_at_start_and_at_run_time(tmp_path):
    """CONNECTION_DESCRIPTOR_TABLE_SIZE (config) and set_descriptor_table_size (ROMA's runtime
    setter, relayed): the process's open-file limit becomes that many, up to the hard limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 3000:
        pytest.fail(f"this test needs a hard open-file limit of at least 3000 (have {hard})")
    cfg = tmp_path / "roma.yaml"
    cfg.write_text("CONNECTION_DESCRIPTOR_TABLE_SIZE: 2500\n")
    port = free_port()
    proc = subprocess.Popen([ROMAD_BIN, "127.0.0.1", "-p", str(port), "--storage", "memory", "--config", str(cfg)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard)))
    try:
        wait_for(lambda: raw(port, b"version\r\n").startswith(b"VERSION"), 20, "romad to serve")
        assert _open_files_soft_limit(proc.pid) == 2500           # raised from 1200 at start
        assert raw(port, b"stat DESCRIPTOR_TABLE_SIZE|descriptor_table_size\r\n") == \
            b"config.CONNECTION_DESCRIPTOR_TABLE_SIZE 2500\r\nconnection.descriptor_table_size 2500\r\nEND\r\n"
        assert raw(port, b"set_descriptor_table_size 1000\r\n") == b"CLIENT_ERROR length must be greater than 1024\r\n"
        assert raw(port, b"set_descriptor_table_size\r\n") == b"CLIENT_ERROR number of arguments\r\n"
        assert raw(port, b"set_descriptor_table_size 3000\r\n") == b'{"127.0.0.1_%d"=>"STORED"}\r\n' % port
        assert _open_files_soft_limit(proc.pid) == 3000
        assert raw(port, b"stat connection.descriptor_table_size\r\n") == \
            b"connection.descriptor_table_size 3000\r\nEND\r\n"
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
