"""libosmocore's GSM 7-bit USSD functions through ctypes: an independent implementation to compare against."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import pytest

_NAMES = ("libosmogsm.so.18", "libosmogsm.so")


class Libosmocore:
    def __init__(self) -> None:
        lib = None
        for name in (*_NAMES, ctypes.util.find_library("osmogsm")):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if lib is None:
            if os.environ.get("USSD_ALLOW_MISSING_TOOLS") == "1":
                pytest.skip("libosmogsm (libosmocore) is not installed")
            pytest.fail("libosmogsm (libosmocore) is not installed: scripts/setup.sh --test installs it")
        self._enc = lib.gsm_7bit_encode_n_ussd
        self._enc.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
        self._enc.restype = ctypes.c_int
        self._dec = lib.gsm_7bit_decode_n_ussd
        self._dec.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_uint8]
        self._dec.restype = ctypes.c_int

    def encode_ussd(self, text: str) -> bytes:
        """int gsm_7bit_encode_n_ussd(uint8_t *result, size_t n, const char *data, int *octets_written)."""
        buf = ctypes.create_string_buffer(512)
        written = ctypes.c_int(0)
        self._enc(buf, len(buf), text.encode("latin-1"), ctypes.byref(written))
        return buf.raw[: written.value]

    def decode_ussd(self, octets: bytes, septets: int | None = None) -> str:
        """int gsm_7bit_decode_n_ussd(char *decoded, size_t n, const uint8_t *ud, uint8_t length_in_septets)."""
        if septets is None:
            septets = len(octets) * 8 // 7
        buf = ctypes.create_string_buffer(1024)
        self._dec(buf, len(buf), octets, septets)
        return buf.value.decode("latin-1")
