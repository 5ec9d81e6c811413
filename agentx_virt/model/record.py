"""``@slotted``: the same dataclass (frozen or not), with ``__slots__`` instead of a
``__dict__``.

Python 3.10's ``dataclass(slots=True)`` does this; 3.9 (RHEL 9) has no such flag,
so the class is rebuilt here the same way.  Put it above the dataclass decorator::

    @slotted
    @dataclass(frozen=True)
    class DiskStats: ...

A DomainStats with a ``__dict__`` took about 1.5 KiB; with 1,000 domains several
thousand of them are alive at once (history, snapshots, the notifier's last one).
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

T = TypeVar("T")


def slotted(cls: type[T]) -> type[T]:
    """``cls`` (a dataclass) rebuilt with one slot per field and no ``__dict__``."""
    if not dataclasses.is_dataclass(cls) or "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: @slotted goes above @dataclass, once")
    names = tuple(field.name for field in dataclasses.fields(cls))
    # The defaults live on in the generated __init__; as class attributes they would
    # clash with the slots of the same names.
    body = {key: value for key, value in cls.__dict__.items()
            if key not in names and key not in ("__dict__", "__weakref__")}
    body["__slots__"] = names
    rebuilt = type(cls.__name__, cls.__bases__, body)
    rebuilt.__qualname__ = cls.__qualname__
    return rebuilt
