"""What the stack tells whoever watches it: the counting half of its output, as an interface.

The stack counts where it already holds the decoded value (no second decode to count); the shell implements the
interface (gateway/ops/metrics.py: Prometheus). Label values are the specs' names: M3UA error codes (RFC 4666
§3.8.1), SCCP return causes (Q.713 §3.12), TCAP message types (Q.773 §3.1), P-Abort causes (Q.773 §3.1), Reject
problems (Q.773 §3.2) as ``<kind>-<code>``.
"""

from __future__ import annotations

from typing import Protocol


class StackObserver(Protocol):
    def asp_state_changed(self, association: str, state: str) -> None: ...

    def destination(self, point_code: int, available: bool) -> None: ...

    def m3ua_error(self, association: str, direction: str, code: str) -> None: ...

    def sccp_message(self, direction: str, kind: str) -> None: ...

    def sccp_dropped(self, reason: str) -> None: ...

    def sccp_return(self, direction: str, cause: int) -> None: ...

    def tcap_message(self, direction: str, kind: str) -> None: ...

    def tcap_abort(self, direction: str, kind: str, cause: str) -> None: ...

    def tcap_reject(self, direction: str, problem: str) -> None: ...

    def dialogue_ended(self, initiator: str, outcome: str, seconds: float) -> None: ...

    def dialogues_active(self, count: int) -> None: ...


class NullObserver:
    """Counts nothing: a stack nobody watches (simulator, tools, most tests)."""

    def asp_state_changed(self, association: str, state: str) -> None:
        return

    def destination(self, point_code: int, available: bool) -> None:
        return

    def m3ua_error(self, association: str, direction: str, code: str) -> None:
        return

    def sccp_message(self, direction: str, kind: str) -> None:
        return

    def sccp_dropped(self, reason: str) -> None:
        return

    def sccp_return(self, direction: str, cause: int) -> None:
        return

    def tcap_message(self, direction: str, kind: str) -> None:
        return

    def tcap_abort(self, direction: str, kind: str, cause: str) -> None:
        return

    def tcap_reject(self, direction: str, problem: str) -> None:
        return

    def dialogue_ended(self, initiator: str, outcome: str, seconds: float) -> None:
        return

    def dialogues_active(self, count: int) -> None:
        return


NULL = NullObserver()
