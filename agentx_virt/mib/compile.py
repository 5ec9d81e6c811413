"""Compile the served MIB modules (and the TC modules they import) to pysmi's JSON.

The package ships the result in ``agentx_virt/mib/compiled/``; the agent reads
OIDs and syntaxes from it by object name.  ``agentx-virt compile-mib`` runs
this again for LIBVIRT-EXT-MIB, e.g. after editing it; a test checks the shipped
JSON still matches a fresh compilation.

Of a module written elsewhere (LIBVIRT-MIB, libvirt-snmp's) only the facts are
kept: names, OIDs, syntaxes, access, indexes. Its descriptions, contact and
organisation texts are dropped (``FOREIGN_PROSE``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODULE = "LIBVIRT-EXT-MIB"
# Served modules written elsewhere, compiled from their published text.
FOREIGN_MODULES = ("LIBVIRT-MIB", "VMWARE-VMINFO-MIB", "VMWARE-TC-MIB", "VM-MIB",
                   "SNMP-FRAMEWORK-MIB", "UUID-TC-MIB", "IF-MIB", "IANA-STORAGE-MEDIA-TYPE-MIB")
# RFC 7666 VM-MIB and the modules of the textual conventions it uses.
VM_MIB_MODULES = ("VM-MIB", "SNMP-FRAMEWORK-MIB", "UUID-TC-MIB", "IF-MIB",
                  "IANA-STORAGE-MEDIA-TYPE-MIB")
FOREIGN_PROSE = ("description", "contactinfo", "organization", "reference")
# Modules whose textual conventions the MIB uses; compiled and shipped with it.
TC_MODULES = ("SNMPv2-TC", "HCNUM-TC")
# Modules pysmi knows without compiling them (the SMI itself).
STUB_MODULES = ("SNMPv2-SMI", "SNMPv2-CONF", "ASN1", "ASN1-ENUMERATION", "ASN1-REFINEMENT")
PACKAGE_MIB = Path(__file__).with_name(f"{MODULE}.txt")
COMPILED_DIR = Path(__file__).with_name("compiled")


class MibCompileError(RuntimeError):
    """pysmi could not compile the MIB; the message says which module and why."""


def _without_prose(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_prose(v) for k, v in node.items() if k not in FOREIGN_PROSE}
    if isinstance(node, list):
        return [_without_prose(v) for v in node]
    return node


def _canonical(text: str, prose: bool = True) -> str:
    """pysmi's JSON, sorted and indented, without what differs between runs and pysmi
    versions and is not used here: 'meta' (dates, host, user) and 'imports'; without
    the module's prose unless ``prose``."""
    data = json.loads(text)
    data.pop("meta", None)
    data.pop("imports", None)
    if not prose:
        data = _without_prose(data)
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def compile_mib(sources: Sequence[Path], modules: Sequence[str] = (MODULE,)
                ) -> dict[str, str]:
    """Compile ``modules`` and the TC modules; returns {module name: canonical JSON}.

    Args:
        sources: directories holding the modules' texts and the IETF modules they import.
        modules: the modules to compile (LIBVIRT-EXT-MIB by default).
    Raises:
        MibCompileError: a module is missing or does not parse.
    """
    try:  # only this command needs pysmi: the agent serves the JSON it wrote
        from pysmi.codegen import JsonCodeGen
        from pysmi.compiler import MibCompiler
        from pysmi.parser import SmiStarParser
        from pysmi.reader import FileReader
        from pysmi.searcher import StubSearcher
        from pysmi.writer import CallbackWriter
    except ImportError as exc:
        raise MibCompileError(f"compiling the MIB needs pysmi 1.5 or newer ({exc}); "
                              "install it with: pip install 'agentx-virt[compile]'") from None

    produced: dict[str, str] = {}

    def keep(name: str, data: str, context: object) -> None:
        produced[name] = data

    compiler = MibCompiler(SmiStarParser(), JsonCodeGen(), CallbackWriter(keep))
    # Not recursive: only the directories given are searched.
    compiler.add_sources(*(FileReader(str(source), recursive=False) for source in sources))
    compiler.add_searchers(StubSearcher(*STUB_MODULES))
    wanted = (*modules, *TC_MODULES)
    status = compiler.compile(*wanted, rebuild=True)
    failed = {name: str(status.get(name)) for name in wanted if name not in produced}
    if failed:
        where = ", ".join(str(s) for s in sources)
        raise MibCompileError(f"pysmi did not compile {failed} from {where}")
    return {name: _canonical(produced[name], prose=name not in FOREIGN_MODULES)
            for name in wanted}


def write_compiled(compiled: dict[str, str], out_dir: Path = COMPILED_DIR) -> list[Path]:
    """Write each module's JSON as ``out_dir/NAME.json``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in compiled.items():
        path = out_dir / f"{name}.json"
        path.write_text(text)
        paths.append(path)
    return paths
