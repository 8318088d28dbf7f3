"""One error family for every codec.

Each error carries the cause the spec tells the layer above to answer with, so that the stack can reply to the
peer (P-Abort, Reject, M3UA ERR, UDTS) without string matching.
"""

from __future__ import annotations

import enum


class PAbortCause(enum.IntEnum):
    """Q.773 §3.1 P-AbortCause."""

    UNRECOGNIZED_MESSAGE_TYPE = 0
    UNRECOGNIZED_TRANSACTION_ID = 1
    BADLY_FORMATTED_TRANSACTION_PORTION = 2
    INCORRECT_TRANSACTION_PORTION = 3
    RESOURCE_LIMITATION = 4


class ProblemKind(enum.IntEnum):
    """Q.773 §3.2 Reject problem: context tag of the CHOICE."""

    GENERAL = 0
    INVOKE = 1
    RETURN_RESULT = 2
    RETURN_ERROR = 3


class GeneralProblem(enum.IntEnum):
    UNRECOGNIZED_COMPONENT = 0
    MISTYPED_COMPONENT = 1
    BADLY_STRUCTURED_COMPONENT = 2


class InvokeProblem(enum.IntEnum):
    DUPLICATE_INVOKE_ID = 0
    UNRECOGNIZED_OPERATION = 1
    MISTYPED_PARAMETER = 2
    RESOURCE_LIMITATION = 3
    INITIATING_RELEASE = 4
    UNRECOGNIZED_LINKED_ID = 5
    LINKED_RESPONSE_UNEXPECTED = 6
    UNEXPECTED_LINKED_OPERATION = 7


class ReturnResultProblem(enum.IntEnum):
    UNRECOGNIZED_INVOKE_ID = 0
    RETURN_RESULT_UNEXPECTED = 1
    MISTYPED_PARAMETER = 2


class ReturnErrorProblem(enum.IntEnum):
    UNRECOGNIZED_INVOKE_ID = 0
    RETURN_ERROR_UNEXPECTED = 1
    UNRECOGNIZED_ERROR = 2
    UNEXPECTED_ERROR = 3
    MISTYPED_PARAMETER = 4


class CodecError(ValueError):
    """Base of every decoding/encoding error raised by gateway.codecs."""


class TextEncodingError(CodecError):
    """A character cannot be represented in the chosen alphabet, or a text is too long."""

    def __init__(self, message: str, *, char: str | None = None, position: int | None = None) -> None:
        super().__init__(message)
        self.char = char
        self.position = position


class BerError(CodecError):
    """Malformed BER (X.690): bad tag, bad length, truncated value."""


class TcapError(CodecError):
    """A TCAP message the peer must be told about.

    ``p_abort_cause`` is set when the transaction portion is at fault (Q.774 §3.2.1.2: answer with P-Abort);
    ``reject`` is set when only a component is at fault (Q.774 §3.2.2.2: answer with a Reject component), with the
    invoke id of the faulty component when it could be read.
    """

    def __init__(
        self,
        message: str,
        *,
        p_abort_cause: PAbortCause | None = None,
        reject: tuple[ProblemKind, int] | None = None,
        invoke_id: int | None = None,
        otid: bytes | None = None,
        dtid: bytes | None = None,
        partial: object | None = None,
    ) -> None:
        super().__init__(message)
        self.partial = partial  # the message decoded up to a faulty component (a tcap message value)
        self.p_abort_cause = p_abort_cause
        self.reject = reject
        self.invoke_id = invoke_id
        self.otid = otid
        self.dtid = dtid


class MapError(CodecError):
    """A MAP parameter that does not decode: answer with Reject mistypedParameter (TS 29.002 §15.6)."""


class SccpError(CodecError):
    """Malformed SCCP message. ``return_cause`` is the Q.713 §3.12 cause for a UDTS/XUDTS answer."""

    def __init__(self, message: str, *, return_cause: int | None = None) -> None:
        super().__init__(message)
        self.return_cause = return_cause


class M3uaError(CodecError):
    """Malformed M3UA message. ``error_code`` is the RFC 4666 §3.8.1 error code for an ERR answer."""

    def __init__(self, message: str, *, error_code: int, diagnostic: bytes = b"") -> None:
        super().__init__(message)
        self.error_code = error_code
        self.diagnostic = diagnostic  # the offending octets, for the ERR's Diagnostic Information
