"""lvxDomainIndex assignment and its state file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from agentx_virt.domain_index import DomainIndexRegistry, StateFileError
from agentx_virt.snapshot import uuid_key

A, B, C = ("6695eb01-f6a4-8304-79aa-97f2502e193f", "0e6ce3a6-9d8f-4bd4-a3b5-1c2a6d5e7f80",
           "11111111-2222-4333-8444-555555555555")


def test_indexes_are_stable_and_never_reused_while_remembered() -> None:
    registry = DomainIndexRegistry()
    assert registry.assign([A, B], now=0) == {A: 1, B: 2}
    assert registry.assign([B], now=1) == {B: 2}
    assert registry.assign([C, A], now=2) == {C: 3, A: 1}
    assert registry.assign([A.upper()], now=3) == {A: 1}


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "domain-index.json"
    registry = DomainIndexRegistry()
    registry.assign([A, B], now=5)
    registry.save(path)
    again = DomainIndexRegistry.load(path)
    assert again.assign([B, C], now=6) == {B: 2, C: 3}
    again.save(path)                                  # replaces the file in place
    assert [p.name for p in path.parent.iterdir()] == ["domain-index.json"]
    assert DomainIndexRegistry.load(path).assign([C], now=7) == {C: 3}


def test_missing_state_file_is_an_empty_registry(tmp_path: Path) -> None:
    assert len(DomainIndexRegistry.load(tmp_path / "absent.json")) == 0


@pytest.mark.parametrize("content", [
    "not json",
    json.dumps({"version": 99}),
    json.dumps({"version": 1, "next_index": 1, "domains": {A: {"index": 0, "last_seen": 1}}}),
    json.dumps({"version": 1, "next_index": 3, "domains": {
        A: {"index": 1, "last_seen": 1}, B: {"index": 1, "last_seen": 1}}}),
    json.dumps({"version": 1, "domains": {}}),
])
def test_a_corrupt_state_file_is_moved_aside_and_logged(
        tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "domain-index.json"
    path.write_text(content)
    with caplog.at_level(logging.ERROR):
        registry = DomainIndexRegistry.load(path)
    assert len(registry) == 0
    assert (tmp_path / "domain-index.json.corrupt").read_text() == content
    assert not path.exists()
    assert "new lvxDomainIndex values" in caplog.text and str(path) in caplog.text


def test_an_unwritable_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateFileError, match="cannot write domain index state"):
        DomainIndexRegistry().save(blocker / "domain-index.json")


def test_long_unseen_domains_are_forgotten() -> None:
    registry = DomainIndexRegistry()
    registry.assign([A, B], now=0)
    registry.assign([B], now=100)
    assert registry.forget_unseen(now=150, after_s=120) == [A]
    assert registry.assign([A], now=151) == {A: 3}           # a new index, not 1 again


def test_uuid_keys_are_lower_case_and_share_the_string_when_they_already_are() -> None:
    text = "6a7e0000-0000-4000-8000-0000000000ab"
    assert uuid_key(text) is text
    assert uuid_key(text.upper()) == text
    registry = DomainIndexRegistry()
    (key,) = registry.assign([text], now=1)
    assert key is text
