"""What the notifier is told to send: kinds, repetition, stall and threshold rules."""

from __future__ import annotations

from dataclasses import dataclass

from agentx_virt.config import TRAP_KINDS, Config, Threshold


@dataclass(frozen=True)
class TrapSettings:
    kinds: frozenset[str] = frozenset(TRAP_KINDS)
    persistent: bool = False          # re-send every domain's state each poll interval
    hold_down_s: float = 0.0          # at most one state trap per domain per this long
    stall_cycles: int = 3
    interval_s: float = 10.0
    thresholds: tuple[Threshold, ...] = ()
    include: tuple[str, ...] = ()      # [poll] include / exclude: excluded domains get
    exclude: tuple[str, ...] = ()      # no trap (nor an index)


def settings_for(config: Config) -> TrapSettings:
    """TrapSettings from the agent's Config."""
    return TrapSettings(kinds=frozenset(config.traps), persistent=config.persistent_traps,
                        hold_down_s=config.hold_down_s, stall_cycles=config.stall_cycles,
                        interval_s=config.interval_s, thresholds=config.thresholds,
                        include=config.include, exclude=config.exclude)
