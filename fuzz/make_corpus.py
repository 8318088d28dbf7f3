"""Write the seed corpora fuzz/corpus/<harness>/<sha1> from the repository's vectors.

Sources: tests/support/handmade.py (the design.md TC-BEGIN, hand-built SCCP/M3UA), the project's encoders on a
set of values covering every message kind, and the real-world captures of tests/vectors/ (their M3UA, SCCP and
TCAP octets, the pcaps' through tshark when it is at hand; ../shared/captures only when tests/vectors/ is absent).
The seeds are committed: replaying them (tests/test_fuzz_corpus.py) needs neither the captures nor tshark.
Run: ``.venv/bin/python -m fuzz.make_corpus``. Existing files are kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from fuzz import fuzz_node
from gateway.codecs import layers, m3ua, sccp, tcap, ussd_string
from gateway.codecs import map as M
from gateway.codecs.map_address import AddressString, encode_imsi
from gateway.codecs.map_dialogue import MapRefuse, MapUserAbort
from tests.support import handmade
from tests.support.vectors import VECTORS

ROOT = Path(__file__).resolve().parent
# the in-repo copy first; the shared folder beside the repository is an optional fallback
CAPTURES = VECTORS if VECTORS.is_dir() else ROOT.parents[1] / "shared" / "captures"
MAP_CASES = ("ussd_arg", "ussd_res", "sri_arg", "sri_res", "error", "address", "registry")  # fuzz_map._CASES


def write(harness: str, seeds: Iterable[bytes]) -> int:
    folder = ROOT / "corpus" / harness
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for seed in seeds:
        path = folder / hashlib.sha1(seed).hexdigest()
        if not path.exists():
            path.write_bytes(seed)
            count += 1
    return count


def _captures() -> dict[str, list[bytes]]:
    """M3UA, SCCP and TCAP octets of the captures, by protocol (empty without the captures or tshark)."""
    out: dict[str, list[bytes]] = {"m3ua": [], "sccp": [], "tcap": []}
    if not CAPTURES.is_dir():
        return out
    for name in ("go_tcap_short.hex", "go_tcap_long.hex"):
        out["tcap"].append(bytes.fromhex((CAPTURES / name).read_text().strip()))
    wiki = bytes.fromhex((CAPTURES / "wiki_m2ua_ussd.hex").read_text().strip())[17:].rstrip(b"\x00")
    out["sccp"].append(wiki)
    if shutil.which("tshark") is None:
        return out
    for pcap in sorted(CAPTURES.glob("*.pcap")):
        raw = subprocess.run(["tshark", "-r", str(pcap), "-T", "json", "-x", "-Y", "m3ua || sccp || tcap"],
                             capture_output=True, check=True, text=True).stdout  # fmt: skip
        for packet in json.loads(raw):
            frame = packet["_source"]["layers"]
            for proto in out:
                value = frame.get(f"{proto}_raw")
                if value is None:
                    continue
                items = value if isinstance(value[0], list) else [value]
                out[proto] += [bytes.fromhex(item[0]) for item in items]
    return out


def _tcap_messages() -> list[tcap.TcapMessage]:
    ussd = M.encode_ussd_arg(M.ussd_arg("*100#", msisdn="491720000001"))
    res = M.encode_ussd_res(M.ussd_res("Balance: 5 EUR"))
    sri = M.encode_sri_sm_arg(M.RoutingInfoForSmArg(AddressString.e164("491720000001"), True,
                                                    AddressString.e164("4917000000"), True, 1, b"\x01\x02"))
    open_ = M.encode_dialogue_external(M.MapOpen(AddressString.imsi("262011234567890"),
                                                 AddressString.e164("491720000001")))  # fmt: skip
    ac = M.AC_NETWORK_UNSTRUCTURED_SS_V2
    return [
        tcap.Begin(b"\x00\x00\x00\x01", tcap.Aarq(ac, (open_,)), (tcap.Invoke(1, 59, ussd),)),
        tcap.Continue(b"\x01\x02", b"\x00\x00\x00\x01", tcap.Aare(ac, user_information=(
            M.encode_dialogue_external(M.MapAccept()),)), (tcap.Invoke(2, 60, res, 1),)),
        tcap.End(b"\x01", None, (tcap.ReturnResult(1, 59, res),)),
        tcap.End(b"\x01", tcap.Aare(ac, 1, 2, 1), (tcap.ReturnResult(1, None, None, False), tcap.ReturnResult(2))),
        tcap.Continue(b"\x01", b"\x02", None, (tcap.ReturnError(1, 34, b"\x0a\x01\x01"), tcap.Reject(None, 0, 2),
                                               tcap.Reject(3, 1, 1))),
        tcap.Begin(b"\x05\x06\x07", tcap.Aarq(M.AC_SHORT_MSG_GATEWAY_V3), (tcap.Invoke(-3, 45, sri),)),
        tcap.Begin(b"\x09", None, (tcap.Invoke(300, (1, 2, 840, 1), b"\x04\x00"),)),
        tcap.Abort(b"\x01\x02\x03\x04", 1),
        tcap.Abort(b"\x01", None, tcap.Abrt(0, (M.encode_dialogue_external(MapUserAbort(2, 1)),))),
        tcap.Abort(b"\x01"),
        tcap.Unidirectional(tcap.Audt(ac), (tcap.Invoke(0, 61, ussd),)),
    ]


def _sccp_messages(payload: bytes) -> list[bytes]:
    a = sccp.SccpAddress.gt_e164("491700000001", 147)
    b = sccp.SccpAddress.gt_e164("49170000002", 8, tt=3)
    seg = sccp.Segmentation(True, True, 2, 0x123456)
    out = [
        sccp.encode(sccp.Udt(1, True, a, b, payload)),
        sccp.encode(sccp.Udt(0, False, sccp.SccpAddress(True, 8, 100), sccp.SccpAddress(True, 6, 200, national=True),
                             payload)),
        sccp.encode(sccp.Udt(1, True, a, b, payload[:100], 15, seg, 3)),
        sccp.encode(sccp.Udts(1, b, a, payload)),
        sccp.encode(sccp.Udts(2, b, a, payload[:50], 14, None, 4)),
        handmade.sccp_udt(handmade.gt4_address("491700000001", 147), handmade.gt4_address("4917", None), payload),
    ]
    for gti, gt in ((1, sccp.GlobalTitle("12345", 1, nai=4)), (2, sccp.GlobalTitle("1234", 2, tt=9)),
                    (3, sccp.GlobalTitle("123", 3, tt=1, np=6)), (4, sccp.GlobalTitle("a1f", 4, es=3))):  # fmt: skip
        out.append(sccp.encode(sccp.Udt(0, False, sccp.SccpAddress(False, 6, None, gt), b, bytes((gti,)))))
    return out


def _m3ua_messages() -> list[bytes]:
    rk = m3ua.RoutingKey(1, 200, 7, 2, 3, (3,), (100, 101))
    msgs = [
        m3ua.aspup(5, "hello"), m3ua.aspup_ack(), m3ua.aspdn(), m3ua.aspdn_ack(), m3ua.beat(b"beat"),
        m3ua.beat_ack(b"beat"), m3ua.aspac(2, (1, 2)), m3ua.aspac_ack(2, (1,)), m3ua.aspia((1,)), m3ua.aspia_ack(),
        m3ua.err(7, routing_contexts=(1,), diagnostic_info=b"\x01\x00", network_appearance=3,
                 affected=(m3ua.AffectedPointCode(100, 0),)),
        m3ua.ntfy(1, 3, asp_identifier=5, routing_contexts=(1,), info="x"),
        m3ua.ssnm(m3ua.Ssnm.DUNA, (m3ua.AffectedPointCode(200, 8),), routing_contexts=(1,)),
        m3ua.ssnm(m3ua.Ssnm.SCON, (m3ua.AffectedPointCode(200),), concerned_destination=100, congestion_level=2),
        m3ua.ssnm(m3ua.Ssnm.DUPU, (m3ua.AffectedPointCode(200),), user_cause=(2, 3), network_appearance=1),
        m3ua.reg_req((rk,)), m3ua.reg_rsp((m3ua.RegistrationResult(1, 0, 7),)),
        m3ua.dereg_req((7,)), m3ua.dereg_rsp((m3ua.DeregistrationResult(7, 0),)),
    ]  # fmt: skip
    return [m3ua.encode(m) for m in msgs]


def main() -> None:
    caps = _captures()
    tcaps = [tcap.encode(m) for m in _tcap_messages()] + [handmade.TC_BEGIN_USSD] + caps["tcap"]
    sccps = [s for t in tcaps[:4] for s in _sccp_messages(t)] + caps["sccp"]
    a = sccp.SccpAddress.gt_e164("491700000001", 147)
    b = sccp.SccpAddress.gt_e164("491700000002", 8)
    stack = [layers.encode_data(t, called=a, calling=b, opc=100, dpc=200, sls=3, routing_context=1)
             for t in _tcap_messages()]  # fmt: skip
    stack += [handmade.ussd_begin(), handmade.ussd_begin(routing_context=None)] + caps["m3ua"]
    stack += [m3ua.encode_data(1, 2, 3, 2, 0, 1, s, 5, 6, 7) for s in sccps[:3]]
    m3uas = stack + _m3ua_messages()
    framer = [bytes((0xFF, 0)) + b"".join(m3uas[:3]), bytes((0xFF, 3, 5, 50, 200)) + b"".join(m3uas[3:8]),
              bytes((0x10, 1, 9)) + m3uas[-1] + b"\x01\x00\x00\x00\x00\x00\x00\x03"]  # fmt: skip
    params = {
        "ussd_arg": [M.encode_ussd_arg(M.ussd_arg("*100#", msisdn="491720000001", alerting_pattern=1)),
                     M.encode_ussd_arg(M.ussd_arg("x" * 150)), handmade.TC_BEGIN_USSD[50:],
                     handmade.ussd_arg(handmade.pack_gsm7_ussd("*123#"), msisdn=None)],
        "ussd_res": [M.encode_ussd_res(M.ussd_res("Ünïcødé ✓")), M.encode_ussd_res(M.ussd_res("y" * 140))],
        "sri_arg": [M.encode_sri_sm_arg(M.RoutingInfoForSmArg(AddressString.e164("491720000001"), False,
                                                              AddressString.e164("4917000000")))],
        "sri_res": [M.encode_sri_sm_res(M.RoutingInfoForSmRes("262011234567890", AddressString.e164("4917001"),
                    b"\x00\x01\x02\x03", True, AddressString.e164("4917002"), True)),
                    M.encode_sri_sm_res(M.RoutingInfoForSmRes("26201123", AddressString.e164("4917001")))],
        "error": [bytes((code,)) + (M.encode_error(code, 1) or b"") for code in (34, 13, 6, 1, 27)] + [b"\x48"],
        "address": [AddressString.e164("4917*#abc").encode(), encode_imsi("262011234567890")],
        "registry": [b"\x3b" + handmade.TC_BEGIN_USSD[50:], b"\x2d\x30\x00", b"\x02\x04\x01\x00"],
    }  # fmt: skip
    maps = [bytes((MAP_CASES.index(kind),)) + p for kind, ps in params.items() for p in ps]
    dialogues = [M.encode_dialogue_external(p) for p in (
        M.MapOpen(AddressString.imsi("262011234567890"), AddressString.e164("491720000001")), M.MapOpen(),
        M.MapAccept(), M.MapClose(), MapRefuse(1, M.AC_NETWORK_UNSTRUCTURED_SS_V2), MapRefuse(0),
        MapUserAbort(0), MapUserAbort(1), MapUserAbort(2, 1), MapUserAbort(3, 6), M.MapProviderAbort(1))]  # fmt: skip
    texts = []
    for dcs in (0x0F, 0x00, 0x10, 0x11, 0x20, 0x44, 0x48, 0x4C, 0x60, 0x94, 0xF4, 0xF0, 0x30):
        for text in ("*100#", "Hello {world} €", "ab\r", "x" * 93):
            try:
                used, octets = ussd_string.encode(text, dcs, language="en")
            except Exception:
                octets = text.encode()[:160]
                used = dcs
            texts.append(bytes((used,)) + octets)
    counts = {
        "m3ua": write("m3ua", m3uas), "framer": write("framer", framer), "sccp": write("sccp", sccps),
        "tcap": write("tcap", tcaps), "tcap_asn1": write("tcap_asn1", tcaps), "map": write("map", maps),
        "map_dialogue": write("map_dialogue", dialogues), "ussd_string": write("ussd_string", texts),
        "layers": write("layers", stack), "node": write("node", fuzz_node.seeds()),
    }  # fmt: skip
    for name, count in counts.items():
        print(f"{name}: {count} new seeds")


if __name__ == "__main__":
    main()
