"""The TOML configuration and its command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentx_virt.config import DEFAULT_STATS, Config, ConfigError, Threshold, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agentx-virt.toml"
    path.write_text(text)
    return path


def test_defaults_and_environment() -> None:
    assert load(None, environ={}) == Config()
    assert load(None, environ={"LIBVIRT_DEFAULT_URI": "qemu+ssh://h/system"}).uri == \
        "qemu+ssh://h/system"
    assert Config().stats == DEFAULT_STATS and "fs_info" not in DEFAULT_STATS


def test_file_then_command_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
[libvirt]
uri = "test:///default"
[poll]
interval = 30
instances = 3
stats = ["cpu", "perf", "fs_info"]
include = ["web-*"]
[agent]
state_dir = "/tmp/x"
""")
    config = load(path, {"interval_s": 5, "uri": None}, environ={})
    assert (config.uri, config.interval_s, config.instances) == ("test:///default", 5, 3)
    assert config.domain_timeout_s == 2.5      # unset: half the interval
    assert config.stats == ("cpu", "perf", "fs_info") and config.include == ("web-*",)
    assert config.state_dir == Path("/tmp/x")


@pytest.mark.parametrize("text, message", [
    ("[poll]\ninterval = 0\n", ":2: [poll] interval: must be a number >= 0.1, got 0"),
    ("[poll]\n\ninstances = 1.5\n", ":3: [poll] instances: must be an integer >= 1"),
    ("[poll]\nstats = [\"cpu\", \"cpu_utl\"]\n", "unknown statistics group(s) ['cpu_utl']"),
    ("[poll]\ninterval = 10\ncolour = 1\n", ":3: [poll] colour: unknown key; [poll] knows"),
    ("[pol]\ninterval = 10\n", ":1: unknown section [pol]"),
    ("[agentx]\naddress = \"udp:1.2.3.4:5\"\n", "[agentx] address: AgentX address"),
    ("[agent]\nlog_level = \"LOUD\"\n", "[agent] log_level: must be one of"),
    ("[poll]\ninterval = 2\ndomain_timeout = 5\n", "must be shorter than [poll] interval"),
    ("[poll\n", "not valid TOML"),
])
def test_bad_configuration_names_file_line_and_key(tmp_path: Path, text: str,
                                                   message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_bad_command_line_value_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="command line --interval: must be a number"):
        load(None, {"interval_s": -1}, environ={})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "absent.toml", environ={})


def test_the_packaged_example_configuration_loads() -> None:
    example = Path(__file__).resolve().parents[1] / "packaging" / "agentx-virt.toml"
    config = load(example, environ={})
    assert config.stats == DEFAULT_STATS
    assert config.domain_timeout_s == 5 and config.interval_s == 10


def test_traps_section(tmp_path: Path) -> None:
    path = write(tmp_path, """
[traps]
enable = ["state", "poll"]
persistent = true
hold_down = 30
stall_cycles = 5
""")
    config = load(path, environ={})
    assert (config.traps, config.persistent_traps, config.hold_down_s, config.stall_cycles) \
        == (("state", "poll"), True, 30, 5)
    none = load(write(tmp_path, "[traps]\nenable = []\n"), environ={})
    assert none.traps == ()


@pytest.mark.parametrize("text, message", [
    ("[traps]\nenable = [\"state\", \"thresholds\"]\n", r"unknown notification kind\(s\)"),
    ("[traps]\npersistent = 1\n", "must be true or false"),
    ("[traps]\nstall_cycles = 0\n", "must be an integer >= 1"),
])
def test_bad_traps_values(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write(tmp_path, text), environ={})


def test_thresholds_section(tmp_path: Path) -> None:
    path = write(tmp_path, """
[thresholds]
lvxDomainCpuUtilVcpus = { rising = 9000, falling = 8000 }
lvxDomainMemRssKiB = 4194304
lvxDomainDataAgeSeconds = { rising = 60 }
""")
    assert load(path, environ={}).thresholds == (
        Threshold("lvxDomainCpuUtilVcpus", 9000, 8000),
        Threshold("lvxDomainMemRssKiB", 4194304, 4194304),
        Threshold("lvxDomainDataAgeSeconds", 60, 60))
    assert Config().thresholds == () and "threshold" in Config().traps


@pytest.mark.parametrize("text, message", [
    ("[thresholds]\nlvxDomainName = 5\n", r":2: \[thresholds\] lvxDomainName: not a metric"),
    ("[thresholds]\nlvxDomainCpuTimeTotalNs = 5\n", "not a metric a threshold can watch"),
    ("[thresholds]\nlvxDomainMemRssKiB = -1\n", "integer from 0 to 2"),
    ("[thresholds]\nlvxDomainMemRssKiB = 1.5\n", "integer from 0 to 2"),
    ("[thresholds]\nlvxDomainMemRssKiB = true\n", "integer from 0 to 2"),
    ("[thresholds]\nlvxDomainMemRssKiB = { falling = 3 }\n", "rising = N, falling = M"),
    ("[thresholds]\nlvxDomainMemRssKiB = { rising = 3, above = 4 }\n",
     "rising = N, falling = M"),
    ("[thresholds]\nlvxDomainMemRssKiB = { rising = 3, falling = 4 }\n",
     r"falling \(4\) must not be above rising \(3\)"),
    ("[threshold]\nlvxDomainMemRssKiB = 3\n", r"unknown section \[threshold\]"),
])
def test_bad_thresholds(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write(tmp_path, text), environ={})
