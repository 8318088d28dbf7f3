"""Service-code routing: most specific rule wins, direct-dial parameters, default, load-time refusals."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.routing.table import Route, RouteConfigError, RouteTable, parts, routes_from_config

URL = "http://127.0.0.1:8080/ussd"


def table(*routes: Route) -> RouteTable:
    return RouteTable.compile(routes, file="test.toml")


def test_parts() -> None:
    assert parts("*123#") == ("*123",)
    assert parts("*777*1*500#") == ("*777", "1", "500")
    assert parts("*#06#") == ("*#06",)
    assert parts("#100#") == ("#100",)
    for bad in ("123", "*12a#", "*123", "**#", "", "*1**2#"):
        assert parts(bad) is None, bad


def test_most_specific_wins_whatever_the_order() -> None:
    menu = Route("menu", "*123#", "prefix", URL)
    sub = Route("sub", "*123*4#", "exact", URL)
    deep = Route("deep", "*123*4*9#", "prefix", URL)
    default = Route("default", None)
    for order in ((menu, sub, deep, default), (default, deep, sub, menu)):
        t = table(*order)
        assert t.lookup("*123#").route is menu  # type: ignore[union-attr]
        assert t.lookup("*123*4#").route is sub  # type: ignore[union-attr]
        m = t.lookup("*123*4*9*7#")
        assert m is not None and m.route is deep and m.params == ("7",) and m.service_code == "*123*4*9#"
        m = t.lookup("*123*5*6#")
        assert m is not None and m.route is menu and m.params == ("5", "6")
        assert t.lookup("*999#").route is default  # type: ignore[union-attr]
        assert t.lookup("not a code").route is default  # type: ignore[union-attr]


def test_direct_dial_parameters() -> None:
    t = table(Route("pay", "*777#", "prefix", URL))
    m = t.lookup("*777*1*500#")
    assert m is not None and (m.service_code, m.params) == ("*777#", ("1", "500"))
    assert t.lookup("*778#") is None  # no default route: unknown


def test_exact_rule_takes_no_parameters() -> None:
    t = table(Route("x", "*100#", "exact", URL), Route("d", None))
    assert t.lookup("*100*1#").route.name == "d"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("routes", "reason"),
    [
        ((Route("a", "*123#", "prefix", URL), Route("b", "*123#", "prefix", URL)), "conflicts with route 'a'"),
        ((Route("a", "*12x#", "prefix", URL),), "can never match"),
        ((Route("a", "*123#", "prefix", URL, allowed_msisdn=()),), "can never match"),
        ((Route("a", None), Route("b", None)), "second default"),
        ((Route("a", "*1#", "prefix", URL), Route("a", "*2#", "prefix", URL)), "two routes have this name"),
        ((Route("a", "*1#", "sometimes", URL),), "match must be"),
    ],
)
def test_refused_at_load_with_file_rule_reason(routes: tuple[Route, ...], reason: str) -> None:
    with pytest.raises(RouteConfigError) as info:
        table(*routes)
    assert info.value.file == "test.toml" and reason in info.value.reason
    assert str(info.value).startswith("test.toml: route ")


def test_allowed_prefixes_and_texts() -> None:
    r = Route("staff", "*555#", "prefix", URL, allowed_msisdn=("4917",), allowed_vlr=("49",),
              texts={"busy": {"default": "Busy", "de": "Besetzt"}})
    assert r.allows("491721234", None, "491720000")
    assert not r.allows("331234", None, "491720000") and not r.allows(None, None, "49")
    assert r.text("busy", "de") == "Besetzt" and r.text("busy", "fr") == "Busy" and r.text("error", None, "x") == "x"


def test_from_toml() -> None:
    cfg = tomllib.loads("""
[[route]]
name = "bank"
code = "*245#"
primary_url = "http://127.0.0.1:9000/bank"
backup_url = "http://127.0.0.1:9001/bank"
dialect = "africastalking"
timeout = 3.0
texts = { busy = { default = "Try later" } }

[[route]]
name = "fallback"
primary_url = "http://127.0.0.1:9000/unknown"
""")
    t = routes_from_config(cfg, file="gw.toml")
    m = t.lookup("*245*1#")
    assert m is not None and m.route.dialect == "africastalking" and m.route.backup_url and m.params == ("1",)
    assert t.lookup("*9#").route.name == "fallback"  # type: ignore[union-attr]
    with pytest.raises(RouteConfigError, match=r"gw.toml: route 'x': unknown keys \['colour'\]"):
        routes_from_config({"route": [{"name": "x", "code": "*1#", "primary_url": URL, "colour": "red"}]},
                           file="gw.toml")
    with pytest.raises(RouteConfigError, match="primary_url is required"):
        routes_from_config({"route": [{"name": "x", "code": "*1#"}]}, file="gw.toml")
    with pytest.raises(RouteConfigError, match="dialect"):
        routes_from_config({"route": [{"name": "x", "code": "*1#", "primary_url": URL, "dialect": "xml"}]})


digit_parts = st.lists(st.sampled_from(["1", "2", "12"]), min_size=1, max_size=3)


@given(st.lists(st.tuples(digit_parts, st.sampled_from(["exact", "prefix"])), max_size=8, unique_by=lambda x:
                (tuple(x[0]), x[1])), st.lists(digit_parts, min_size=1, max_size=10), st.booleans())
@settings(max_examples=300, deadline=None)
def test_trie_equals_linear_reference(rules: list[tuple[list[str], str]], codes: list[list[str]],
                                      with_default: bool) -> None:
    routes = [Route(f"r{i}", "*" + "*".join(p) + "#", m, URL) for i, (p, m) in enumerate(rules)]
    if with_default:
        routes.append(Route("default", None))
    t = table(*routes)
    for code_parts in codes:
        code = "*" + "*".join(code_parts) + "#"
        # Reference: a linear scan for the most specific rule.
        best = None
        for r in routes:
            if r.code is None:
                continue
            rp = parts(r.code)
            assert rp is not None
            cp = parts(code)
            assert cp is not None
            if r.match == "exact" and rp == cp:
                best = (10**6, r)
            elif r.match == "prefix" and cp[: len(rp)] == rp and (best is None or best[0] < len(rp)):
                best = (len(rp), r)
        m = t.lookup(code)
        expected = best[1] if best else (routes[-1] if with_default else None)
        assert (m.route if m else None) is expected
