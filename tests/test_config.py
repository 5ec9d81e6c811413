"""The TOML configuration and its command-line overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentx_virt.app import cli
from agentx_virt.app.config import _KEYS as KEYS
from agentx_virt.app.config import DEFAULT_STATS, Config, ConfigError, load
from agentx_virt.notify.settings import Threshold

from .conftest import private_libvirtd


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
    ("[poll]\ninterval = 0\n", ":2: [poll] interval: must be a number of seconds from 1 to"),
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
    with pytest.raises(ConfigError, match="command line --state-dir: must be a non-empty"):
        load(None, {"state_dir": ""}, environ={})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "absent.toml", environ={})


EXAMPLE = Path(__file__).resolve().parents[1] / "packaging" / "agentx-virt.toml"


def test_the_packaged_example_configuration_loads() -> None:
    config = load(EXAMPLE, environ={})
    assert config.stats == DEFAULT_STATS
    assert config.domain_timeout_s == 5 and config.interval_s == 10


@pytest.mark.parametrize("interval", [1, 2, 5, 9.5, 10, 60, 3600, 86400])
def test_the_packaged_example_is_valid_at_every_interval(interval: float) -> None:
    config = load(EXAMPLE, {"interval_s": interval}, environ={})
    assert config.domain_timeout_s < config.interval_s == interval


def test_the_packaged_example_shows_every_key_with_the_defaults() -> None:
    text = EXAMPLE.read_text()
    for section, key in KEYS:
        assert f"[{section}]" in text and re.search(rf"(?m)^#? ?{key} = ", text), key
    assert load(EXAMPLE, environ={}) == Config()          # every value shown is the default


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
    ("[thresholds]\nlvxDomainName = 5\n", r":2: \[thresholds\] lvxDomainName: metric "
     r"'lvxDomainName' is not one a threshold can watch"),
    ("[thresholds]\nlvxDomainCpuTimeTotalNs = 5\n", "not one a threshold can watch"),
    ("[thresholds]\nlvxDomainMemRssKiB = -1\n", "integer from 0 to 2"),
    ("[thresholds]\nlvxDomainMemRssKiB = 1.5\n", "integer from 0 to 2"),
    ("[thresholds]\nlvxDomainMemRssKiB = true\n", "integer from 0 to 2"),
    ("[thresholds]\nlvxDomainMemRssKiB = { falling = 3 }\n", "needs rising and knows"),
    ("[thresholds]\nlvxDomainMemRssKiB = { rising = 3, above = 4 }\n",
     r"got keys \['above', 'rising'\]"),
    ("[thresholds]\nlvxDomainMemRssKiB = { rising = 3, domains = ['a'] }\n",
     "needs rising and knows falling, for, rising, severity;"),
    ("[thresholds]\nlvxDomainMemRssKiB = { rising = 3, falling = 4 }\n",
     r"falling \(4\) must not be above rising \(3\)"),
    ("[threshold]\nlvxDomainMemRssKiB = 3\n", r":1: threshold must be written as "
     r"\[\[threshold\]\] tables"),
    ("[[threshold]]\nrising = 3\n", r":1: \[\[threshold\]\] #1: needs metric"),
    ("[[threshold]]\nmetric = 'diskReadIops'\nrising = 3\n\n[[threshold]]\n"
     "metric = 'diskReadIops'\nrising = 3\nfor = 0\n",
     r":8: \[\[threshold\]\] #2: for must be a number of polls from 1 to 1000"),
    ("[[threshold]]\nmetric = 'diskReadIops'\nrising = 3\nseverity = 'okay'\n",
     r":4: \[\[threshold\]\] #1: severity must be one of warning, failure"),
    ("[[threshold]]\nmetric = 'diskReadIops'\nrising = 3\nuuids = ['x']\n",
     r":4: \[\[threshold\]\] #1: uuids: 'x' is not a UUID"),
    ("[[threshold]]\nmetric = 'diskReadIops'\nrising = 3\ndomains = 'web'\n",
     r":4: \[\[threshold\]\] #1: domains must be a list"),
])
def test_bad_thresholds(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write(tmp_path, text), environ={})


def test_scoped_threshold_rules_follow_the_short_form(tmp_path: Path) -> None:
    path = write(tmp_path, """
        [thresholds]
        lvxDomainMemRssKiB = { rising = 10, falling = 5, for = 2, severity = "failure" }

        [[threshold]]
        metric = "nicRxBitsPerSecond"
        rising = 5000000000
        falling = 4000000000
        for = 3
        domains = ["cust-a-*"]
        uuids = ["6695EB01-F6A4-8304-79AA-97F2502E193F"]
        tags = ["virt-1"]
    """)
    short, scoped = load(path, environ={}).thresholds
    assert short == Threshold("lvxDomainMemRssKiB", 10, 5, 2, "failure")
    assert short.origin == "agentx-virt.toml:3 [thresholds] lvxDomainMemRssKiB"
    assert scoped == Threshold("nicRxBitsPerSecond", 5000000000, 4000000000, 3, "warning",
                               ("6695eb01-f6a4-8304-79aa-97f2502e193f",), ("cust-a-*",),
                               ("virt-1",))
    assert scoped.origin == "agentx-virt.toml:5 [[threshold]] nicRxBitsPerSecond"


# Each a whole configuration file that agentx-virt refuses: exit 2 and one line that
# says where and what (run with `dump`, which reads the file as `run` does).
BAD_FILES = [
    ("interval = 10\n", ":1: key 'interval' is outside any section"),
    ("uri = \"test:///default\"\n[poll]\n", ":1: key 'uri' is outside any section"),
    ("[poll]\ninterval = inf\n", "[poll] interval: must be a number of seconds from 1 to 86400"),
    ("[poll]\ninterval = nan\n", "got nan"),
    ("[poll]\ninterval = 1e10\n", "got 10000000000.0"),
    ("[poll]\ninterval = 0.5\n", "from 1 to 86400, got 0.5"),
    ("[poll]\ninterval = -3\n", "got -3"),
    ("[poll]\ninterval = \"10\"\n", "got '10'"),
    ("[poll]\ninterval = true\n", "got True"),
    ("[poll]\ndomain_timeout = inf\n", "[poll] domain_timeout: must be a number of seconds"),
    ("[poll]\ndomain_timeout = 0\n", "from 0.1 to 86400, got 0"),
    ("[poll]\ninterval = 4\ndomain_timeout = 4\n",
     "domain_timeout (4 s, from {path}:3) must be shorter than [poll] interval (4 s, from "
     "{path}:2)"),
    ("[poll]\ninstances = 0\n", "[poll] instances: must be an integer >= 1"),
    ("[poll]\nworkers = 2.5\n", "[poll] workers: must be an integer >= 1"),
    ("[poll]\nstats = \"cpu\"\n", "[poll] stats: must be a list of non-empty strings"),
    ("[poll]\nstats = [\"cpu\", \"gpu\"]\n", "unknown statistics group(s) ['gpu']"),
    ("[poll]\ninclude = [\"\"]\n", "[poll] include: must be a list of non-empty strings"),
    ("[poll]\nexclude = \"test-*\"\n", "[poll] exclude: must be a list"),
    ("[agent]\nstate_dir = \"\"\n", "[agent] state_dir: must be a non-empty string"),
    ("[agent]\nstate_dir = \"   \"\n", "[agent] state_dir: must name a directory"),
    ("[agent]\nlog_level = \"chatty\"\n", "[agent] log_level: must be one of"),
    ("[agent]\nuser = \"root\"\n", "[agent] user: unknown key; [agent] knows"),
    ("[agentx]\naddress = \"tcp:localhost\"\n", "[agentx] address:"),
    ("[agentx]\ntrap_queue = 0\n", "[agentx] trap_queue: must be an integer >= 1"),
    ("[traps]\nhold_down = -1\n", "[traps] hold_down: must be a number >= 0"),
    ("[traps]\nenable = [\"storm\"]\n", "unknown notification kind(s) ['storm']"),
    ("[libvirt]\nuri = 5\n", "[libvirt] uri: must be a non-empty string, got 5"),
    ("[libvirt]\nuri = \"qemu://[bad/system\"\n",
     "libvirt URI 'qemu://[bad/system' (--uri, [libvirt] uri or $LIBVIRT_DEFAULT_URI): "
     "libvirt cannot parse it"),
    ("[snmp]\nport = 161\n", ":1: unknown section [snmp]"),
    ("[poll]\ninterval = 10\n[poll]\nworkers = 2\n", "not valid TOML"),
    ("[thresholds]\nlvxDomainMemRssKiB = \"high\"\n", "[thresholds] lvxDomainMemRssKiB:"),
    ("[mibs]\nserve = [\"VM-MIB2\"]\n", "[mibs] serve: unknown MIB(s) ['VM-MIB2']; known: "
     "LIBVIRT-EXT-MIB, LIBVIRT-MIB, VM-MIB, LIBVIRT-MIB-LEGACY, VMWARE-VMINFO-MIB"),
    ("[mibs]\nserve = []\n", "[mibs] serve: must name at least one MIB"),
]


@pytest.mark.parametrize("text, message", BAD_FILES, ids=[str(n) for n in range(len(BAD_FILES))])
def test_a_bad_configuration_file_exits_2_saying_where_and_what(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    path = write(tmp_path, text)
    assert cli.main(["dump", "--config", str(path), "--uri", "test:///default"]
                    if "[libvirt]" not in text else ["dump", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("agentx-virt: configuration error: ")
    assert message.format(path=path) in error, error
    assert error.count("\n") == 1


@pytest.mark.peers
def test_a_uri_whose_driver_libvirtd_lacks_exits_2(
        tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]) -> None:
    """Only the daemon knows its drivers: with none up (``nosuchdriver:///x`` alone goes to
    the host's socket) the URI is retried, so this asks a private libvirtd."""
    with private_libvirtd(tmp_path_factory, "the unknown-driver test") as daemon:
        uri = f"nosuchdriver:///x?socket={daemon.root}/run/libvirt/libvirt-sock"
        path = write(tmp_path_factory.mktemp("config"), f'[libvirt]\nuri = "{uri}"\n')
        assert cli.main(["dump", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("agentx-virt: configuration error: ")
    assert "libvirt has no driver for it: no connection driver available" in error, error


def test_an_unreachable_uri_is_not_a_configuration_error(tmp_path: Path) -> None:
    """A daemon that is not up may come up: that URI is retried, not refused."""
    from agentx_virt.collector.connection import uri_problem
    assert uri_problem(f"qemu+unix:///system?socket={tmp_path}/absent-sock") is None
    assert uri_problem("test:///default") is None



def test_stat_groups_are_read_into_their_enum(tmp_path: Path) -> None:
    from agentx_virt.model.snapshot import StatGroup
    config = load(write(tmp_path, '[poll]\nstats = ["perf", "cpu", "perf"]\n'), environ={})
    assert config.stats == (StatGroup.PERF, StatGroup.CPU)
    assert all(type(group) is StatGroup for group in config.stats + Config().stats)
    assert config.wants(StatGroup.PERF) and not config.wants(StatGroup.MEMORY)


def test_the_served_mibs_from_the_file_and_from_mibs() -> None:
    assert Config().mibs == ("LIBVIRT-EXT-MIB", "LIBVIRT-MIB", "VM-MIB")
    assert load(None, {"mibs": "LIBVIRT-MIB, LIBVIRT-EXT-MIB"}, environ={}).mibs == (
        "LIBVIRT-MIB", "LIBVIRT-EXT-MIB")
    with pytest.raises(ConfigError, match=r"command line --mibs: unknown MIB\(s\) \['X'\]"):
        load(None, {"mibs": "X"}, environ={})
