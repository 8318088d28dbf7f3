"""GSM 7-bit USSD encode/decode of a 182-character text: ours vs libosmocore (ctypes) vs pycrate."""

from __future__ import annotations

import ctypes
import random
from collections.abc import Callable

from bench.common import Row, time_interleaved
from gateway.codecs import gsm7


def rows() -> list[Row]:
    rng = random.Random(7)
    text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789.,") for _ in range(182))
    packed = gsm7.encode_ussd(text)
    enc_fns: dict[str, Callable[[], object]] = {"ours": lambda: gsm7.encode_ussd(text)}
    dec_fns: dict[str, Callable[[], object]] = {"ours": lambda: gsm7.decode_ussd(packed)}
    try:
        lib = ctypes.CDLL("libosmogsm.so.18")
    except OSError:
        lib = None
    if lib is not None:
        enc = lib.gsm_7bit_encode_n_ussd
        enc.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
        dec = lib.gsm_7bit_decode_n_ussd
        dec.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_uint8]

        # The way we would call it: text in, bytes out, buffers created per call.
        def osmo_encode() -> bytes:
            buf = ctypes.create_string_buffer(200)
            written = ctypes.c_int()
            enc(buf, 200, text.encode(), ctypes.byref(written))
            return buf.raw[: written.value]

        def osmo_decode() -> str:
            buf = ctypes.create_string_buffer(400)
            dec(buf, 400, packed, len(packed) * 8 // 7)
            return buf.value.decode()

        assert osmo_encode() == packed and osmo_decode() == text
        enc_fns["libosmocore"] = osmo_encode
        dec_fns["libosmocore"] = osmo_decode
    try:
        from pycrate_mobile import TS23038
    except ImportError:
        TS23038 = None
    if TS23038 is not None:
        enc_fns["pycrate"] = lambda: TS23038.encode_7b(text)
        dec_fns["pycrate"] = lambda: TS23038.decode_7b(packed)
    refs_enc = time_interleaved(enc_fns)
    refs_dec = time_interleaved(dec_fns)
    ours_enc = refs_enc.pop("ours")
    ours_dec = refs_dec.pop("ours")
    osmo_e = refs_enc.get("libosmocore")
    osmo_d = refs_dec.get("libosmocore")
    return [
        Row("GSM 7-bit USSD encode, 182 chars", ours_enc, refs_enc, "ratio <= 1.0 vs libosmocore",
            None if osmo_e is None else ours_enc <= osmo_e),
        Row("GSM 7-bit USSD decode, 182 chars", ours_dec, refs_dec, "ratio <= 1.0 vs libosmocore",
            None if osmo_d is None else ours_dec <= osmo_d),
    ]  # fmt: skip
