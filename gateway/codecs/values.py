"""Typed equality for the NamedTuple values of the codecs.

NamedTuples are the hot-path value type (they construct ~3x faster than frozen dataclasses), but plain tuple
equality ignores the class: ``Begin(b"1", None, ()) == End(b"1", None, ())`` would be True. Every value class is
decorated with :func:`typed_value`, so that values of different kinds never compare (or hash) equal.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def _eq(self: tuple[Any, ...], other: object) -> bool:
    return type(self) is type(other) and tuple.__eq__(self, other)


def _ne(self: tuple[Any, ...], other: object) -> bool:
    return not _eq(self, other)


def _hash(self: tuple[Any, ...]) -> int:
    return hash((type(self).__name__, tuple.__hash__(self)))


def typed_value(cls: type[T]) -> type[T]:
    cls.__eq__ = _eq  # type: ignore[assignment,method-assign]
    cls.__ne__ = _ne  # type: ignore[assignment,method-assign]
    cls.__hash__ = _hash  # type: ignore[assignment,method-assign]
    return cls
