"""lvxDomainIndex assignment and its state file."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

import pytest

from agentx_virt.app.config import Config
from agentx_virt.app.daemon import Agent
from agentx_virt.model.snapshot import uuid_key
from agentx_virt.snmp.domain_index import DomainIndexRegistry, StateFileError

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


def _state(domains: object, next_index: object = 3) -> str:
    return json.dumps({"version": 1, "next_index": next_index, "domains": domains})


# Every shape of state file that cannot be decoded: each is moved aside, never a crash.
UNUSABLE_FILES = {
    "not JSON": b"not json",
    "another version": json.dumps({"version": 99}).encode(),
    "index 0": _state({A: {"index": 0, "last_seen": 1}}, 1).encode(),
    "one index twice": _state({A: {"index": 1, "last_seen": 1},
                               B: {"index": 1, "last_seen": 1}}).encode(),
    "no next_index": json.dumps({"version": 1, "domains": {}}).encode(),
    "random bytes": bytes(range(256)) * 4,
    "not UTF-8": b'{"version": 1, "next_index": 2, "domains": {"\xff\xfe": 1}}',
    "deep nesting": b"[" * 100000 + b"]" * 100000,
    "empty": b"",
    "JSON null": b"null",
    "a list": b"[1, 2, 3]",
    "domains a list": _state([A, B]).encode(),
    "entry a number": _state({A: 7}).encode(),
    "index a string": _state({A: {"index": "1", "last_seen": 1}}).encode(),
    "index a bool": _state({A: {"index": True, "last_seen": 1}}).encode(),
    "index a float": _state({A: {"index": 1.0, "last_seen": 1}}).encode(),
    "last_seen missing": _state({A: {"index": 1}}).encode(),
    "last_seen text": _state({A: {"index": 1, "last_seen": "yesterday"}}).encode(),
    "last_seen NaN": _state({A: {"index": 1, "last_seen": float("nan")}}).encode(),
    "next_index too big": _state({}, 2**31).encode(),
    "next_index a string": _state({}, "3").encode(),
}


@pytest.mark.parametrize("content", list(UNUSABLE_FILES.values()), ids=list(UNUSABLE_FILES))
def test_every_undecodable_state_file_is_moved_aside(
        tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "domain-index.json"
    path.write_bytes(content)
    with caplog.at_level(logging.ERROR):
        registry = DomainIndexRegistry.load(path)
    assert len(registry) == 0 and registry.path == path
    assert (tmp_path / "domain-index.json.corrupt").read_bytes() == content
    assert not path.exists()
    assert "moved it to" in caplog.text and "new lvxDomainIndex values" in caplog.text
    assert str(path) in caplog.text
    assert registry.assign([A], now=1) == {A: 1}       # and it writes a good file again
    assert DomainIndexRegistry.load(path).assign([A], now=2) == {A: 1}


def test_a_directory_or_a_symlink_in_place_of_the_state_file_is_moved_aside(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "domain-index.json"
    path.mkdir()
    with caplog.at_level(logging.ERROR):
        assert len(DomainIndexRegistry.load(path)) == 0
    assert (tmp_path / "domain-index.json.corrupt").is_dir()
    assert "is a directory" in caplog.text
    target = tmp_path / "elsewhere.json"
    target.write_text(_state({A: {"index": 1, "last_seen": 1}}))
    path.symlink_to(target)
    assert len(DomainIndexRegistry.load(path)) == 0
    assert (tmp_path / "domain-index.json.corrupt.1").is_symlink()   # the first one is kept
    assert "symbolic link" in caplog.text
    assert target.read_text() == _state({A: {"index": 1, "last_seen": 1}})


def test_a_new_index_is_on_disk_before_assign_returns(tmp_path: Path) -> None:
    path = tmp_path / "domain-index.json"
    registry = DomainIndexRegistry.load(path)
    assert registry.assign([A], now=1) == {A: 1}
    assert DomainIndexRegistry.load(path).assign([A], now=2) == {A: 1}
    assert registry.assign([B], now=3) == {B: 2}
    on_disk = json.loads(path.read_text())["domains"]
    assert {key: entry["index"] for key, entry in on_disk.items()} == {A: 1, B: 2}


def save_error(registry: DomainIndexRegistry) -> Optional[str]:
    return registry.save_error      # read afresh: calls in between change it


def test_a_failed_save_is_kept_in_save_error_and_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state_dir = tmp_path / "state"
    registry = DomainIndexRegistry.load(state_dir / "domain-index.json")
    registry.assign([A], now=1)
    # A file where the directory was fails every write, for root too (a full disk or a
    # read-only mount fails the same write call).
    state_dir.rename(tmp_path / "moved")
    state_dir.write_text("")
    with caplog.at_level(logging.WARNING):
        assert registry.assign([B], now=2) == {B: 2}   # still served
        assert registry.assign([C], now=3) == {C: 3}
        assert "cannot write" in str(save_error(registry))
        assert caplog.text.count("cannot write domain index state") == 1
        state_dir.unlink()
        registry.assign([A], now=4)          # no new index: nothing written
        assert save_error(registry) is not None
        registry.flush()
    assert save_error(registry) is None
    assert "written again" in caplog.text
    assert DomainIndexRegistry.load(state_dir / "domain-index.json").assign(
        [A, B, C], now=5) == {A: 1, B: 2, C: 3}


def test_a_read_only_load_never_writes_or_moves(tmp_path: Path) -> None:
    path = tmp_path / "domain-index.json"
    path.write_text("garbage")
    registry = DomainIndexRegistry.load(path, read_only=True)
    registry.assign([A], now=1)
    registry.flush()
    assert path.read_text() == "garbage" and sorted(p.name for p in tmp_path.iterdir()) == [
        "domain-index.json"]
    good = DomainIndexRegistry.load(tmp_path / "good.json")
    good.assign([B, A], now=1)
    assert DomainIndexRegistry.load(tmp_path / "good.json", read_only=True).assign(
        [A], now=2) == {A: 2}


def test_an_agent_whose_state_directory_takes_no_write_does_not_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    agent = Agent(Config(uri="test:///default", agentx=f"unix:{tmp_path}/absent.sock",
                         state_dir=blocker / "state"))
    with caplog.at_level(logging.CRITICAL):
        assert agent.run() == 1
    assert "domain index state" in caplog.text and "Not a directory" in caplog.text
    assert "could not stay stable" in caplog.text
