"""Containment: no exception raised while handling one received message or one event may take anything else down.

Each layer's entry for one received unit catches what its own code did not expect, answers the peer as the spec
says for an undecodable unit, releases what the unit had started, and reports an :class:`InternalError` to one
:class:`FaultObserver` (the shell counts and logs it: gateway/ops/faults.py). The entries are listed in
ARCHITECTURE.md ("Containment"):

- ``M3uaAssociation.receive``: one M3UA message -> ERR Protocol Error (RFC 4666 §3.8.1);
- ``SignallingNode.on_m3ua_event``: one SCCP message and the TCAP message in it -> discarded at SCCP (Q.714 §4.3),
  P-Abort badlyFormattedTransactionPortion to a readable otid at TCAP (Q.774 §3.2.1.2), and the dialogue it touched
  released;
- ``UssdService.handle``: one TC indication -> Reject mistypedParameter in TC-END for an opening invoke
  (TS 29.002 §15.6), else TC-U-ABORT, and the session closed with outcome ``gateway-error``;
- in the shell, ``StackHost`` (gateway/transport/host.py) for one event to a service and one timer tick, and the
  transports' reads (``AssociationDriver.contained`` in gateway/transport/association.py) as the last resort.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class InternalError:
    """An exception the code did not expect, caught at a containment boundary."""

    where: str  # the boundary: m3ua, sccp, tcap, map, service, timer, transport
    kind: str  # exception type and the innermost frame: "IndexError at map_ussd.py:97"
    octets: bytes  # what was being handled (empty for a timer tick)
    error: BaseException


class FaultObserver(Protocol):
    def internal_error(self, fault: InternalError) -> None: ...


class CountingObserver:
    """The observer of a stack without a shell (simulator, tests): counts, keeps the last fault."""

    def __init__(self) -> None:
        self.count = 0
        self.last: InternalError | None = None

    def internal_error(self, fault: InternalError) -> None:
        self.count += 1
        self.last = fault


def kind_of(exc: BaseException) -> str:
    """The exception's type and the innermost frame it was raised in: one log line per kind."""
    tb = exc.__traceback__
    if tb is None:
        return type(exc).__name__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{type(exc).__name__} at {tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}"


def fault(where: str, exc: BaseException, octets: bytes = b"") -> InternalError:
    return InternalError(where, kind_of(exc), bytes(octets), exc)
