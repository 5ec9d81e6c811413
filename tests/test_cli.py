"""The command line as a user meets it: usage errors, help texts, dump, demo signals."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agentx_virt.app import cli

from .conftest import wait_for


@pytest.mark.parametrize("argv", [
    ["probe", "--timeout", "-1"],
    ["probe", "--timeout", "0"],
    ["probe", "--timeout", "inf"],
    ["probe", "--timeout", "soon"],
    ["demo", "--domains", "0"],
    ["demo", "--domains", "-5"],
    ["demo", "--domains", "1.5"],
    ["dump", "--samples", "0"],
    ["dump", "--gap", "nan"],
    ["dump", "--format", "yaml"],
    ["run", "--interval", "often"],
])
def test_bad_flag_values_are_usage_errors(argv: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_an_empty_state_dir_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dump", "--uri", "test:///default", "--state-dir", ""]) == 2
    assert "--state-dir: must be a non-empty string" in capsys.readouterr().err


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(_subparsers(cli._parser())))
def test_every_flag_says_what_it_does_and_its_default(command: str) -> None:
    parser = _subparsers(cli._parser())[command]
    for action in parser._actions:
        if action.dest == "help" or not action.option_strings:
            continue
        text = action.help or ""
        assert len(text) > 15, (command, action.option_strings)
        assert action.required or "default" in text, (command, action.option_strings, text)


def test_command_help_is_whole_sentences() -> None:
    for name, sub in _subparsers(cli._parser()).items():
        usage = cli._parser().format_help()
        assert name in usage
        assert not (sub.description or "").endswith(" from")
    assert "the JSON the agent serves from (after editing the MIB)" in " ".join(
        cli._parser().format_help().split())


def test_dump_against_an_unreachable_libvirt_says_so_without_daemon_talk(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/absent-sock"
    assert cli.main(["dump", "--uri", uri, "--state-dir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "NOT connected" in captured.out
    assert "retrying" not in captured.err and "until libvirt is back" not in captured.err


def test_dump_json_with_two_samples_has_cpu_util_and_state_names(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dump", "--uri", "test:///default", "--format", "json", "--samples", "2",
                     "--gap", "0.2", "--state-dir", str(tmp_path)]) == 0
    (domain,) = json.loads(capsys.readouterr().out)["domains"]
    assert (domain["state"], domain["state_name"]) == (1, "running")
    assert isinstance(domain["state_reason_name"], str)   # the test driver's: "unknown"
    assert domain["cpu_util_vcpus"] is not None          # a rate needs two samples
    assert {v["state_name"] for v in domain["vcpus"]} == {"running"}
    assert cli.main(["dump", "--uri", "test:///default", "--format", "json",
                     "--state-dir", str(tmp_path)]) == 0
    (once,) = json.loads(capsys.readouterr().out)["domains"]
    assert once["cpu_util_vcpus"] is None


def test_the_files_log_level_is_honoured(tmp_path: Path) -> None:
    config = tmp_path / "agentx-virt.toml"
    config.write_text('[agent]\nlog_level = "WARNING"\n[libvirt]\nuri = "test:///default"\n')
    root = logging.getLogger()
    before = root.level
    try:
        cli._checked_config(cli._parser().parse_args(["run", "--config", str(config)]))
        assert root.level == logging.WARNING
        cli._checked_config(cli._parser().parse_args(["--log-level", "debug", "run",
                                                      "--config", str(config)]))
        assert root.level == logging.DEBUG                 # the flag wins
    finally:
        root.setLevel(before)


@pytest.mark.peers
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_demo_stops_its_snmpd_and_removes_its_directory_on_a_signal(
        signum: signal.Signals) -> None:
    demo = subprocess.Popen([sys.executable, "-m", "agentx_virt", "demo", "--domains", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert demo.stdout is not None
    with demo.stdout:
        lines = []
        for line in demo.stdout:            # up to the line that says snmpd runs
            lines.append(line)
            if "private snmpd on" in line:
                break
        work = Path(lines[0].split(" in ", 1)[1].strip()).parent
        snmpd_pid = int((work / "snmpd" / "snmpd.pid").read_text())
        demo.send_signal(signum)
        rest = demo.stdout.read()
    assert demo.wait(30) == 128 + signum, rest
    assert f"{signum.name}: stopping" in rest
    wait_for(lambda: not Path(f"/proc/{snmpd_pid}").exists() or
             Path(f"/proc/{snmpd_pid}/stat").read_text().split()[2] == "Z", 10)
    assert not work.exists()
    assert os.path.isdir("/tmp")


def test_check_config_reports_every_error_with_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agentx-virt.toml"
    path.write_text('[poll]\ninterval = -3\nworkrs = 2\n\n[agentx]\naddress = ""\n\n'
                    '[pol]\ninstances = 2\n')
    assert cli.main(["check-config", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4, lines
    assert all(line.startswith("agentx-virt: configuration error: ") for line in lines)
    assert [line.split(": ")[2] for line in lines] == [
        f"{path}:2", f"{path}:3", f"{path}:6", f"{path}:8"]
    assert "unknown key" in lines[1] and "unknown section [pol]" in lines[3]


def test_check_config_of_a_good_file_says_what_it_sets(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agentx-virt.toml"
    path.write_text('[libvirt]\nuri = "test:///default"\n\n[poll]\ninterval = 20\n\n'
                    '[thresholds]\nlvxDomainCpuUtilVcpus = 9000\n')
    assert cli.main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"{path}: OK: libvirt test:///default, ")
    assert "every 20 s (domain timeout 5 s)" in out[0] and "1 threshold(s)" in out[0]
