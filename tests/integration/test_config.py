"""romad --config: a YAML file with ROMA's config.rb setting names (R9.1); flags override it."""
import subprocess

from romatest import ROMAD_BIN, Romad


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
