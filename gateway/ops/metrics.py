"""Prometheus metrics of the SS7 stack (prometheus-client).

One :class:`StackMetrics` per gateway process, on its own registry so tests and several stacks in one process do
not collide. Names follow the Prometheus conventions (``_total`` counters, base units); label values are the
spec's names (``m3ua_class``/``m3ua_type`` from RFC 4666 §3.1.2, TCAP P-Abort causes from Q.773 §3.1, Reject
problems from Q.773 §3.2, MAP errors from TS 29.002 §17.6.6).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# RFC 4666 §3.1.2 message classes and types, for label values.
M3UA_NAMES: dict[tuple[int, int], tuple[str, str]] = {
    (0, 0): ("MGMT", "ERR"),
    (0, 1): ("MGMT", "NTFY"),
    (1, 1): ("Transfer", "DATA"),
    (2, 1): ("SSNM", "DUNA"),
    (2, 2): ("SSNM", "DAVA"),
    (2, 3): ("SSNM", "DAUD"),
    (2, 4): ("SSNM", "SCON"),
    (2, 5): ("SSNM", "DUPU"),
    (2, 6): ("SSNM", "DRST"),
    (3, 1): ("ASPSM", "ASPUP"),
    (3, 2): ("ASPSM", "ASPDN"),
    (3, 3): ("ASPSM", "BEAT"),
    (3, 4): ("ASPSM", "ASPUP_ACK"),
    (3, 5): ("ASPSM", "ASPDN_ACK"),
    (3, 6): ("ASPSM", "BEAT_ACK"),
    (4, 1): ("ASPTM", "ASPAC"),
    (4, 2): ("ASPTM", "ASPIA"),
    (4, 3): ("ASPTM", "ASPAC_ACK"),
    (4, 4): ("ASPTM", "ASPIA_ACK"),
    (9, 1): ("RKM", "REG_REQ"),
    (9, 2): ("RKM", "REG_RSP"),
    (9, 3): ("RKM", "DEREG_REQ"),
    (9, 4): ("RKM", "DEREG_RSP"),
}

ASP_STATES = ("down", "inactive", "active")
# ussd_push_callbacks_total{result}: every value is present from the start, at zero.
CALLBACK_RESULTS = ("delivered", "retried", "abandoned")


class StackMetrics:
    """Counters and gauges for M3UA, SCCP, TCAP and MAP, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[object, ...]], Any] = {}
        r = self.registry
        self.m3ua_messages = Counter(
            "ussd_m3ua_messages",
            "M3UA messages by direction, class and type (RFC 4666 §3.1.2)",
            ["association", "direction", "m3ua_class", "m3ua_type"],
            registry=r,
        )
        self.m3ua_errors = Counter(
            "ussd_m3ua_errors",
            "M3UA ERR messages by direction and error code (RFC 4666 §3.8.1)",
            ["association", "direction", "error_code"],
            registry=r,
        )
        self.asp_state = Gauge(
            "ussd_m3ua_asp_state",
            "1 for the current ASP state of each association (RFC 4666 §4.3.1), 0 for the others",
            ["association", "state"],
            registry=r,
        )
        self.destination_available = Gauge(
            "ussd_m3ua_destination_available",
            "1 when the point code is available (DAVA), 0 after DUNA (RFC 4666 §3.4)",
            ["point_code"],
            registry=r,
        )
        self.sccp_messages = Counter(
            "ussd_sccp_messages",
            "SCCP messages by direction and type (Q.713 §4)",
            ["direction", "sccp_type"],
            registry=r,
        )
        self.sccp_return_causes = Counter(
            "ussd_sccp_return_causes",
            "UDTS/XUDTS return causes sent and received (Q.713 §3.12)",
            ["direction", "cause"],
            registry=r,
        )
        self.tcap_messages = Counter(
            "ussd_tcap_messages",
            "TCAP messages by direction and type (Q.773 §3.1)",
            ["direction", "tcap_type"],
            registry=r,
        )
        self.tcap_aborts = Counter(
            "ussd_tcap_aborts",
            "TC aborts by direction, kind (p-abort / u-abort) and cause (Q.773 §3.1)",
            ["direction", "kind", "cause"],
            registry=r,
        )
        self.tcap_rejects = Counter(
            "ussd_tcap_rejects",
            "Reject components by direction and problem (Q.773 §3.2)",
            ["direction", "problem"],
            registry=r,
        )
        self.map_errors = Counter(
            "ussd_map_errors",
            "MAP ReturnError components by direction and error (TS 29.002 §17.6.6)",
            ["direction", "error"],
            registry=r,
        )
        self.internal_errors = Counter(
            "ussd_internal_errors",
            "Exceptions caught at a containment boundary, by boundary (m3ua, sccp, tcap, map, service, timer, "
            "transport): a defect in the gateway, answered as the spec says for an undecodable message",
            ["where"],
            registry=r,
        )
        self.sccp_dropped_total = Counter(
            "ussd_sccp_dropped",
            "Received SCCP messages discarded, by reason (malformed, unequipped-user, hop-counter-violation, "
            "segmentation-failure, reassembly-timeout, reassembly-limit, ...; Q.714 §4.2, §4.1.2.2)",
            ["reason"],
            registry=r,
        )
        self.dialogues_active_gauge = Gauge(
            "ussd_tcap_dialogues_active", "TCAP dialogues in the dialogue table", registry=r
        )
        self.dialogues = Counter(
            "ussd_tcap_dialogues",
            "TCAP dialogues ended, by initiator and outcome",
            ["initiator", "outcome"],
            registry=r,
        )
        self.dialogue_duration = Histogram(
            "ussd_tcap_dialogue_duration_seconds",
            "TCAP dialogue lifetime",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 180, 300, 600),
            registry=r,
        )

        self.sessions = Counter(
            "ussd_sessions",
            "USSD sessions ended, by route and outcome (completed, busy, app-timeout, unknown-code, ...)",
            ["route", "outcome"],
            registry=r,
        )
        self.sessions_active = Gauge("ussd_sessions_active", "USSD sessions in progress", ["route"], registry=r)
        self.app_errors = Counter(
            "ussd_app_errors",
            "Application steps that failed, by route and reason (timeout, down, bad-reply, http-<status>)",
            ["route", "reason"],
            registry=r,
        )
        self.app_failovers = Counter(
            "ussd_app_failovers", "Steps served by the backup URL after the primary failed", ["route"], registry=r
        )
        self.replies_too_long = Counter(
            "ussd_app_replies_too_long",
            "Application replies too long for one USSD string, by route and policy (truncate, refuse)",
            ["route", "policy"],
            registry=r,
        )
        self.end_notices = Counter(
            "ussd_end_notices", "End-of-session notices POSTed to applications, by result", ["route", "result"],
            registry=r,
        )
        self.app_latency = Histogram(
            "ussd_app_latency_seconds",
            "Application server reply time per step",
            ["route"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
            registry=r,
        )

        self.http_connections_closed = Counter(
            "ussd_http_connections_closed",
            "HTTP connections cut by a limit of the listener, by the limit (max_connections: refused at the accept; "
            "header_timeout, idle_timeout, max_header_bytes, max_body_bytes, bad_request)",
            ["listener", "reason"],
            registry=r,
        )
        self.http_connections_open = Gauge(
            "ussd_http_connections_open", "HTTP connections being served, per listener", ["listener"], registry=r
        )

        self.push_states = Counter(
            "ussd_push_states",
            "Pushes entering each state (gateway/push/model.py), by cause for retry_wait, failed and expired",
            ["state", "cause"],
            registry=r,
        )
        self.push_in_flight = Gauge("ussd_push_in_flight", "Pushes in routing or sent on this node", registry=r)
        self.push_queue = Gauge("ussd_push_queue", "Pushes in the store by state (all nodes)", ["state"], registry=r)
        self.push_sri_latency = Histogram(
            "ussd_push_sri_seconds", "SRI-for-SM out to the HLR's answer", registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
        )  # fmt: skip
        self.push_latency = Histogram(
            "ussd_push_delivery_seconds", "A push's creation to its acknowledgement or answer", registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
        )  # fmt: skip
        self.push_callbacks = Counter(
            "ussd_push_callbacks",
            "Push status callback attempts by result: delivered (2xx), retried (any other answer, a timeout or a "
            "connection error, before the horizon), abandoned (a failure past the horizon: the callback is dropped)",
            ["result"],
            registry=r,
        )
        for result in CALLBACK_RESULTS:
            self.push_callbacks.labels(result)
        self.push_callback_latency = Histogram(
            "ussd_push_callback_latency_seconds",
            "Push status callbacks: time from the POST to the receiver's answer, whatever its status (timeouts and "
            "connection errors are not observed)",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
            registry=r,
        )

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, cached: prometheus_client's labels() costs microseconds per call, and the
        hot path counts several times per message."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def count_m3ua(self, association: str, direction: str, msg_class: int, msg_type: int) -> None:
        key = (id(self.m3ua_messages), (association, direction, msg_class, msg_type))
        found = self._children.get(key)
        if found is None:
            cls, typ = M3UA_NAMES.get((msg_class, msg_type), (str(msg_class), str(msg_type)))
            found = self._children[key] = self.m3ua_messages.labels(association, direction, cls, typ)
        found.inc()

    def set_asp_state(self, association: str, state: str) -> None:
        for name in ASP_STATES:
            self.asp_state.labels(association, name).set(1 if name == state else 0)

    # ---- gateway.stack.observer.StackObserver ----

    def asp_state_changed(self, association: str, state: str) -> None:
        self.set_asp_state(association, state)

    def destination(self, point_code: int, available: bool) -> None:
        self.destination_available.labels(str(point_code)).set(1 if available else 0)

    def m3ua_error(self, association: str, direction: str, code: str) -> None:
        self.child(self.m3ua_errors, association, direction, code).inc()

    def sccp_message(self, direction: str, kind: str) -> None:
        self.child(self.sccp_messages, direction, kind).inc()

    def sccp_dropped(self, reason: str) -> None:
        self.child(self.sccp_dropped_total, reason).inc()

    def sccp_return(self, direction: str, cause: int) -> None:
        self.child(self.sccp_return_causes, direction, str(cause)).inc()

    def tcap_message(self, direction: str, kind: str) -> None:
        self.child(self.tcap_messages, direction, kind).inc()

    def tcap_abort(self, direction: str, kind: str, cause: str) -> None:
        self.child(self.tcap_aborts, direction, kind, cause).inc()

    def tcap_reject(self, direction: str, problem: str) -> None:
        self.child(self.tcap_rejects, direction, problem).inc()

    def dialogue_ended(self, initiator: str, outcome: str, seconds: float) -> None:
        self.child(self.dialogues, initiator, outcome).inc()
        self.dialogue_duration.observe(max(0.0, seconds))

    def dialogues_active(self, count: int) -> None:
        self.dialogues_active_gauge.set(count)
