"""LIBVIRT-EXT-MIB against the tools NMS users run: smilint, snmptranslate, pysmi, and
snmptable/snmpwalk through a real snmpd serving a built table."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agentx_virt.demo.snmpd import PrivateSnmpd, snmp_tool, tool_env
from agentx_virt.mib.build import build_table
from agentx_virt.mib.compile import COMPILED_DIR, compile_mib
from agentx_virt.mib.libvirt_ext import LIBVIRT_EXT_MIB
from agentx_virt.mib.model import shipped_mib

from .conftest import AgentFactory
from .snapshots import INDEXES, STATUS, full_snapshot

pytestmark = pytest.mark.peers

ROOT = Path(__file__).resolve().parents[1]
MIB_FILE = ROOT / "mibs" / "LIBVIRT-EXT-MIB.txt"


def ietf_dir() -> Path:
    """The IETF base modules: $AGENTX_VIRT_IETF_MIBS, or ../shared/mibs/ietf beside the repo."""
    configured = os.environ.get("AGENTX_VIRT_IETF_MIBS")
    path = Path(configured) if configured else ROOT.parent / "shared" / "mibs" / "ietf"
    assert (path / "SNMPv2-SMI.txt").is_file(), (
        f"IETF MIB modules not found in {path}; set AGENTX_VIRT_IETF_MIBS")
    return path


def mib_search_path() -> str:
    return f"+{MIB_FILE.parent}:{ietf_dir()}"


def test_smilint_level_6_prints_nothing() -> None:
    env = dict(os.environ, SMIPATH=str(ietf_dir()))
    result = subprocess.run(["smilint", "-l", "6", str(MIB_FILE)], capture_output=True,
                            text=True, env=env, timeout=60)
    assert (result.stdout + result.stderr) == ""
    assert result.returncode == 0


def test_snmptranslate_prints_the_tree() -> None:
    result = subprocess.run(
        ["snmptranslate", "-M", mib_search_path(), "-m", "+LIBVIRT-EXT-MIB", "-Tp"],
        capture_output=True, text=True, env=tool_env(), timeout=60)
    assert result.returncode == 0
    assert "LIBVIRT-EXT-MIB" not in result.stderr        # what stderr has is about other MIBs
    for node in ("+--libvirt(36957)", "+--lvxMIB(3)", "+--lvxDomainTable(2)",
                 "lvxDomainUuid(2)", "lvxDiskTarget(1)", "lvxDomainStateChange(1)",
                 "Index: lvxDomainIndex, lvxDiskTarget"):
        assert node in result.stdout, node


def test_the_shipped_json_matches_a_fresh_pysmi_compilation() -> None:
    fresh = compile_mib([MIB_FILE.parent, ietf_dir()])
    for name, text in fresh.items():
        assert (COMPILED_DIR / f"{name}.json").read_text() == text, (
            f"{name}.json is stale: run agentx-virt compile-mib --ietf-dir DIR")


def test_snmptranslate_and_the_compiled_json_agree_on_every_oid() -> None:
    mib = shipped_mib()
    names = sorted(mib.objects)
    result = subprocess.run(
        ["snmptranslate", "-M", mib_search_path(), "-m", "+LIBVIRT-EXT-MIB", "-On",
         *(f"LIBVIRT-EXT-MIB::{name}" for name in names)],
        capture_output=True, text=True, env=tool_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    translated = result.stdout.split()
    assert translated == ["." + ".".join(map(str, mib.objects[n].oid)) for n in names]


def test_snmptable_reads_the_served_tables_by_name(snmpd: PrivateSnmpd,
                                                  start_agent: AgentFactory) -> None:
    mib = shipped_mib()
    table = build_table(full_snapshot(), INDEXES, LIBVIRT_EXT_MIB, status=STATUS).table
    agent = start_agent(snmpd.agentx_address, table, (mib.root,))
    assert agent.session.serving.wait(10)
    options = ["-M", mib_search_path(), "-m", "+LIBVIRT-EXT-MIB", "-Cf", "|", "-Ci"]
    domains = snmp_tool("snmptable", snmpd.agent, "LIBVIRT-EXT-MIB::lvxDomainTable",
                        options=[*options, "-Oe"], numeric=False)
    assert domains.returncode == 0, domains.stderr
    lines = domains.stdout.splitlines()
    header = lines[2].split("|")
    assert header[:4] == ["index", "lvxDomainUuid", "lvxDomainName", "lvxDomainState"]
    rows = {line.split("|")[0]: dict(zip(header, line.split("|"))) for line in lines[3:]}
    assert rows["7"]["lvxDomainName"] == "web-1"
    assert rows["7"]["lvxDomainUuid"] == "6695eb01-f6a4-8304-79aa-97f2502e193f"
    assert rows["7"]["lvxDomainState"] == "3"          # paused, -Oe: numeric
    assert rows["7"]["lvxDomainCpuTimeTotalNs"] == "123456789012 nanoseconds"  # UNITS
    assert rows["3"]["lvxDomainName"] == "db-2"
    disks = snmp_tool("snmptable", snmpd.agent, "LIBVIRT-EXT-MIB::lvxDiskTable",
                      options=options, numeric=False)
    assert disks.returncode == 0, disks.stderr
    disk_rows = disks.stdout.splitlines()[3:]
    assert sorted(row.split("|")[0] for row in disk_rows) == ['7."sdb"', '7."vda"']
    walk = snmp_tool("snmpwalk", snmpd.agent, "LIBVIRT-EXT-MIB::lvxDomainSeverity",
                     options=["-M", mib_search_path(), "-m", "+LIBVIRT-EXT-MIB", "-OQs"],
                     numeric=False)
    assert walk.stdout.split("\n")[:2] == ["lvxDomainSeverity.3 = okay",
                                           "lvxDomainSeverity.7 = warning"]
