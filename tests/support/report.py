"""Lines tests leave for the end of the run: conftest prints them after the summary, so
CI's output carries figures such as the unit's security exposure."""

from __future__ import annotations

LINES: list[str] = []


def report(line: str) -> None:
    LINES.append(line)
