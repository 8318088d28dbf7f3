"""GSM MAP (TS 29.002) for the USSD gateway: application contexts, operations and the argument/result registry.

The stack decodes "whatever arrives" through :func:`decode_argument` / :func:`decode_result`: operations the
gateway serves come back as typed values; any other operation comes back as :class:`Unknown` with its raw
parameter, so that the stack can answer with the proper reject or refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from gateway.codecs.errors import MapError
from gateway.codecs.map_address import AddressString, Nature, Plan
from gateway.codecs.map_dialogue import (
    MapAccept,
    MapClose,
    MapDialoguePdu,
    MapOpen,
    MapProviderAbort,
    MapRefuse,
    MapUserAbort,
    decode_dialogue_external,
    encode_dialogue_external,
    find_map_dialogue,
)
from gateway.codecs.map_errors import MapErrorCode, MapErrorInfo, decode_error, encode_error
from gateway.codecs.map_sms import (
    OP_SEND_ROUTING_INFO_FOR_SM,
    RoutingInfoForSmArg,
    RoutingInfoForSmRes,
    decode_sri_sm_arg,
    decode_sri_sm_res,
    encode_sri_sm_arg,
    encode_sri_sm_res,
)
from gateway.codecs.map_ussd import (
    OP_PROCESS_USSR,
    OP_USSN,
    OP_USSR,
    UssdArg,
    UssdRes,
    decode_ussd_arg,
    decode_ussd_res,
    encode_ussd_arg,
    encode_ussd_res,
    ussd_arg,
    ussd_res,
)
from gateway.codecs.values import typed_value

# TS 29.002 §17.3.2 application context names: 0.4.0.0.1.0.<ac>.<version>
AC_NETWORK_UNSTRUCTURED_SS_V2 = (0, 4, 0, 0, 1, 0, 19, 2)
AC_SHORT_MSG_GATEWAY_V1 = (0, 4, 0, 0, 1, 0, 20, 1)
AC_SHORT_MSG_GATEWAY_V2 = (0, 4, 0, 0, 1, 0, 20, 2)
AC_SHORT_MSG_GATEWAY_V3 = (0, 4, 0, 0, 1, 0, 20, 3)
AC_NETWORK_FUNCTIONAL_SS_V2 = (0, 4, 0, 0, 1, 0, 18, 2)
AC_LOCATION_INFO_RETRIEVAL_V3 = (0, 4, 0, 0, 1, 0, 5, 3)
AC_SUBSCRIBER_INFO_ENQUIRY_V3 = (0, 4, 0, 0, 1, 0, 28, 3)
AC_ANY_TIME_INFO_ENQUIRY_V3 = (0, 4, 0, 0, 1, 0, 29, 3)
AC_SHORT_MSG_MT_RELAY_V3 = (0, 4, 0, 0, 1, 0, 25, 3)
AC_SHORT_MSG_MO_RELAY_V3 = (0, 4, 0, 0, 1, 0, 21, 3)

AC_NAMES: dict[tuple[int, ...], str] = {
    AC_NETWORK_UNSTRUCTURED_SS_V2: "networkUnstructuredSsContext-v2",
    AC_SHORT_MSG_GATEWAY_V1: "shortMsgGatewayContext-v1",
    AC_SHORT_MSG_GATEWAY_V2: "shortMsgGatewayContext-v2",
    AC_SHORT_MSG_GATEWAY_V3: "shortMsgGatewayContext-v3",
    AC_NETWORK_FUNCTIONAL_SS_V2: "networkFunctionalSsContext-v2",
    AC_LOCATION_INFO_RETRIEVAL_V3: "locationInfoRetrievalContext-v3",
    AC_SUBSCRIBER_INFO_ENQUIRY_V3: "subscriberInfoEnquiryContext-v3",
    AC_ANY_TIME_INFO_ENQUIRY_V3: "anyTimeInfoEnquiryContext-v3",
    AC_SHORT_MSG_MT_RELAY_V3: "shortMsgMT-RelayContext-v3",
    AC_SHORT_MSG_MO_RELAY_V3: "shortMsgMO-RelayContext-v3",
}

# Operation names (TS 29.002 §17.5), for logs, metrics and "not served" answers.
OPERATION_NAMES: dict[int, str] = {
    2: "updateLocation", 3: "cancelLocation", 4: "provideRoamingNumber", 7: "insertSubscriberData",
    8: "deleteSubscriberData", 10: "registerSS", 11: "eraseSS", 12: "activateSS", 13: "deactivateSS",
    14: "interrogateSS", 17: "registerPassword", 19: "processUnstructuredSS-Data", 22: "sendRoutingInfo",
    23: "updateGprsLocation", 32: "sendEndSignal", 37: "reset", 43: "checkIMEI", 44: "mt-ForwardSM",
    45: "sendRoutingInfoForSM", 46: "mo-ForwardSM", 47: "reportSM-DeliveryStatus", 55: "sendIdentification",
    56: "sendAuthenticationInfo", 59: "processUnstructuredSS-Request", 60: "unstructuredSS-Request",
    61: "unstructuredSS-Notify", 63: "informServiceCentre", 66: "readyForSM", 67: "purgeMS",
    70: "provideSubscriberInfo", 71: "anyTimeInterrogation",
}  # fmt: skip


@typed_value
class Unknown(NamedTuple):
    """An operation the gateway does not decode: its code and raw parameter."""

    opcode: int | tuple[int, ...]
    parameter: bytes | None


_ARG_DECODERS: dict[int, Callable[[bytes], Any]] = {
    OP_PROCESS_USSR: decode_ussd_arg,
    OP_USSR: decode_ussd_arg,
    OP_USSN: decode_ussd_arg,
    OP_SEND_ROUTING_INFO_FOR_SM: decode_sri_sm_arg,
}
_RES_DECODERS: dict[int, Callable[[bytes], Any]] = {
    OP_PROCESS_USSR: decode_ussd_res,
    OP_USSR: decode_ussd_res,
    OP_SEND_ROUTING_INFO_FOR_SM: decode_sri_sm_res,
}


def serves(opcode: int | tuple[int, ...]) -> bool:
    """Whether the gateway decodes this operation's argument."""
    return isinstance(opcode, int) and opcode in _ARG_DECODERS


def decode_argument(opcode: int | tuple[int, ...], parameter: bytes | None) -> Any:
    """Typed argument of a served operation (raises MapError when it is mistyped), else :class:`Unknown`."""
    decoder = _ARG_DECODERS.get(opcode) if isinstance(opcode, int) else None
    if decoder is None:
        return Unknown(opcode, parameter)
    if parameter is None:
        raise MapError(f"operation {opcode} without its argument")
    return decoder(parameter)


def decode_result(opcode: int | tuple[int, ...], parameter: bytes | None) -> Any:
    """Typed result of a served operation (None when it has no result, e.g. unstructuredSS-Notify)."""
    if parameter is None:
        return None
    decoder = _RES_DECODERS.get(opcode) if isinstance(opcode, int) else None
    if decoder is None:
        return Unknown(opcode, parameter)
    return decoder(parameter)


def operation_name(opcode: int | tuple[int, ...]) -> str:
    if isinstance(opcode, int):
        return OPERATION_NAMES.get(opcode, f"operation{opcode}")
    return ".".join(map(str, opcode))


__all__ = [
    "OP_PROCESS_USSR", "OP_SEND_ROUTING_INFO_FOR_SM", "OP_USSN", "OP_USSR", "AddressString", "MapAccept",
    "MapClose", "MapDialoguePdu", "MapErrorCode", "MapErrorInfo", "MapOpen", "MapProviderAbort", "MapRefuse",
    "MapUserAbort", "Nature", "Plan", "RoutingInfoForSmArg", "RoutingInfoForSmRes", "Unknown", "UssdArg", "UssdRes",
    "decode_argument", "decode_dialogue_external", "decode_error", "decode_result", "decode_sri_sm_arg",
    "decode_sri_sm_res", "decode_ussd_arg", "decode_ussd_res", "encode_dialogue_external", "encode_error",
    "encode_sri_sm_arg", "encode_sri_sm_res", "encode_ussd_arg", "encode_ussd_res", "find_map_dialogue",
    "operation_name", "serves", "ussd_arg", "ussd_res",
]  # fmt: skip
