"""The layers keep to themselves: what importing one loads, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

_LOADED = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.iter_modules(getattr(package, "__path__", [])):
    importlib.import_module(f"{sys.argv[1]}.{module.name}")
print(" ".join(sorted(sys.modules)))
"""


def loaded_by(module: str) -> set[str]:
    """Every module importing ``module`` (and, for a package, all its modules) loads."""
    result = subprocess.run([sys.executable, "-c", _LOADED, module], capture_output=True,
                            text=True, check=True)
    return set(result.stdout.split())


def ours(loaded: set[str]) -> set[str]:
    """The project's top-level parts among ``loaded``: {"agentx", "model", ...}."""
    return {m.split(".")[1] for m in loaded if m.startswith("agentx_virt.")}


def test_the_agentx_package_loads_neither_the_collector_nor_libvirt_nor_the_mib() -> None:
    loaded = loaded_by("agentx_virt.agentx")
    assert "libvirt" not in loaded
    assert ours(loaded) <= {"agentx", "snmp", "oid", "ratelog"}


def test_the_model_loads_no_libvirt_socket_or_thread_code_and_nothing_else_of_ours() -> None:
    loaded = loaded_by("agentx_virt.model")
    assert not loaded & {"libvirt", "socket", "selectors", "threading"}
    assert ours(loaded) == {"model"}


@pytest.mark.parametrize("module", ["agentx_virt.mib", "agentx_virt.notify.rules",
                                    "agentx_virt.notify.builder"])
def test_the_mib_layer_and_the_notification_rules_load_no_libvirt_and_no_socket_code(
        module: str) -> None:
    loaded = loaded_by(module)
    assert not loaded & {"libvirt", "socket", "selectors"}
    assert not ours(loaded) & {"collector", "expose", "app"}


def test_the_mib_layer_and_the_agentx_protocol_do_not_import_each_other() -> None:
    """Both use the SNMP types and the served table from agentx_virt.snmp."""
    assert "agentx" not in ours(loaded_by("agentx_virt.mib"))
    assert not ours(loaded_by("agentx_virt.snmp")) & {"agentx", "mib"}


def test_no_module_over_400_lines_and_no_function_over_60() -> None:
    import ast
    from pathlib import Path

    package = Path(__file__).parent.parent / "agentx_virt"
    too_long = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 400:
            too_long.append(f"{path.name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    too_long.append(f"{path.name}: {node.name}() {length} lines")
    assert not too_long
