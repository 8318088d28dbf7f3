"""Stack metrics: names and labels a NOC dashboard relies on."""

from __future__ import annotations

from prometheus_client import generate_latest

from gateway.ops.metrics import StackMetrics


def test_m3ua_counters_use_rfc_names_and_asp_state_is_one_hot() -> None:
    metrics = StackMetrics()
    metrics.count_m3ua("stp-a", "rx", 1, 1)
    metrics.count_m3ua("stp-a", "rx", 1, 1)
    metrics.count_m3ua("stp-a", "tx", 9, 1)
    metrics.count_m3ua("stp-a", "tx", 7, 7)  # unknown class/type: numeric labels, still counted
    metrics.set_asp_state("stp-a", "active")
    text = generate_latest(metrics.registry).decode()
    labels = 'association="stp-a",direction="rx",m3ua_class="Transfer",m3ua_type="DATA"'
    assert f"ussd_m3ua_messages_total{{{labels}}} 2.0" in text
    assert 'm3ua_class="RKM",m3ua_type="REG_REQ"' in text
    assert 'm3ua_class="7",m3ua_type="7"' in text
    assert 'ussd_m3ua_asp_state{association="stp-a",state="active"} 1.0' in text
    assert 'ussd_m3ua_asp_state{association="stp-a",state="down"} 0.0' in text


def test_registries_are_independent() -> None:
    a, b = StackMetrics(), StackMetrics()
    a.dialogues_active_gauge.set(3)
    assert "ussd_tcap_dialogues_active 0.0" in generate_latest(b.registry).decode()


def test_push_callback_metrics_start_at_zero() -> None:
    """Every result is exported before the first callback, so that rate() and alerts see a series from the start."""
    text = generate_latest(StackMetrics().registry).decode()
    for result in ("delivered", "retried", "abandoned"):
        assert f'ussd_push_callbacks_total{{result="{result}"}} 0.0' in text
    assert "ussd_push_callback_latency_seconds_count 0.0" in text
