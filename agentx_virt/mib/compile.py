"""Compile LIBVIRT-EXT-MIB (and the TC modules it imports) to pysmi's JSON.

The package ships the result in ``agentx_virt/mib/compiled/``; the agent reads
OIDs and syntaxes from it by object name.  ``agentx-virt compile-mib`` runs
this again, e.g. after editing the MIB; a test checks the shipped JSON still
matches a fresh compilation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

MODULE = "LIBVIRT-EXT-MIB"
# Modules whose textual conventions the MIB uses; compiled and shipped with it.
TC_MODULES = ("SNMPv2-TC", "HCNUM-TC")
# Modules pysmi knows without compiling them (the SMI itself).
STUB_MODULES = ("SNMPv2-SMI", "SNMPv2-CONF", "ASN1", "ASN1-ENUMERATION", "ASN1-REFINEMENT")
PACKAGE_MIB = Path(__file__).with_name(f"{MODULE}.txt")
COMPILED_DIR = Path(__file__).with_name("compiled")


class MibCompileError(RuntimeError):
    """pysmi could not compile the MIB; the message says which module and why."""


def _canonical(text: str) -> str:
    """pysmi's JSON, sorted and indented, without what differs between runs and pysmi
    versions and is not used here: 'meta' (dates, host, user) and 'imports'."""
    data = json.loads(text)
    data.pop("meta", None)
    data.pop("imports", None)
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def compile_mib(sources: Sequence[Path]) -> dict[str, str]:
    """Compile the module and its TC modules; returns {module name: canonical JSON}.

    Args:
        sources: directories holding LIBVIRT-EXT-MIB.txt and the IETF modules it imports.
    Raises:
        MibCompileError: a module is missing or does not parse.
    """
    from pysmi.codegen import JsonCodeGen
    from pysmi.compiler import MibCompiler
    from pysmi.parser import SmiStarParser
    from pysmi.reader import FileReader
    from pysmi.searcher import StubSearcher
    from pysmi.writer import CallbackWriter

    produced: dict[str, str] = {}

    def keep(name: str, data: str, context: object) -> None:
        produced[name] = data

    compiler = MibCompiler(SmiStarParser(), JsonCodeGen(), CallbackWriter(keep))
    # Not recursive: only the directories given are searched.
    compiler.add_sources(*(FileReader(str(source), recursive=False) for source in sources))
    compiler.add_searchers(StubSearcher(*STUB_MODULES))
    status = compiler.compile(MODULE, *TC_MODULES, rebuild=True)
    wanted = (MODULE, *TC_MODULES)
    failed = {name: str(status.get(name)) for name in wanted if name not in produced}
    if failed:
        where = ", ".join(str(s) for s in sources)
        raise MibCompileError(f"pysmi did not compile {failed} from {where}")
    return {name: _canonical(produced[name]) for name in wanted}


def write_compiled(compiled: dict[str, str], out_dir: Path = COMPILED_DIR) -> list[Path]:
    """Write each module's JSON as ``out_dir/NAME.json``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in compiled.items():
        path = out_dir / f"{name}.json"
        path.write_text(text)
        paths.append(path)
    return paths
