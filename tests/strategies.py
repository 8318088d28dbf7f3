"""Hypothesis strategies for TCAP and MAP values, shared by the unit and interop tests."""

from __future__ import annotations

from hypothesis import strategies as st

from gateway.codecs import map as M
from gateway.codecs import tcap
from gateway.codecs.map_address import AddressString

tids = st.binary(min_size=1, max_size=4)
invoke_ids = st.integers(-128, 127)
local_codes = st.integers(0, 127)
oids = st.tuples(st.integers(0, 2), st.integers(0, 39), st.lists(st.integers(0, 2**20), max_size=6)).map(
    lambda t: (t[0], t[1], *t[2])
)
digits = st.text(alphabet="0123456789", min_size=1, max_size=15)
e164 = digits.map(AddressString.e164)
addresses = st.builds(AddressString, st.text(alphabet="0123456789*#abc", max_size=38),
                      st.sampled_from([0, 1, 2, 3, 4, 6]), st.sampled_from([0, 1, 3, 4, 6, 8, 9]))
ussd_strings = st.binary(min_size=1, max_size=160)
dcs_values = st.integers(0, 255)

ussd_args = st.builds(M.UssdArg, dcs_values, ussd_strings, st.none() | st.integers(0, 255), st.none() | e164)
ussd_results = st.builds(M.UssdRes, dcs_values, ussd_strings)
map_dialogues = st.one_of(
    st.builds(M.MapOpen, st.none() | addresses, st.none() | addresses),
    st.just(M.MapAccept()),
    st.just(M.MapClose()),
    st.builds(M.MapRefuse, st.integers(0, 2), st.none() | st.just(M.AC_NETWORK_UNSTRUCTURED_SS_V2)),
    st.builds(M.MapUserAbort, st.integers(0, 1), st.none()),
    st.builds(M.MapUserAbort, st.just(2), st.integers(0, 1)),
    st.builds(M.MapUserAbort, st.just(3), st.integers(0, 6)),
    st.builds(M.MapProviderAbort, st.integers(0, 1)),
)
sri_args = st.builds(M.RoutingInfoForSmArg, e164, st.booleans(), e164, st.booleans(), st.none() | st.integers(0, 10),
                     st.none() | st.binary(min_size=1, max_size=12))
sri_results = st.builds(
    M.RoutingInfoForSmRes, st.text(alphabet="0123456789", min_size=6, max_size=15), e164,
    st.none() | st.binary(min_size=4, max_size=4), st.booleans(), st.none() | e164, st.booleans(),
).map(lambda r: r if r.additional_number is not None else r._replace(additional_is_sgsn=False))

user_info = st.lists(map_dialogues.map(M.encode_dialogue_external), max_size=1).map(tuple)
acs = st.sampled_from([M.AC_NETWORK_UNSTRUCTURED_SS_V2, M.AC_SHORT_MSG_GATEWAY_V3, M.AC_SHORT_MSG_GATEWAY_V2]) | oids
dialogues = st.one_of(
    st.builds(tcap.Aarq, acs, user_info),
    st.builds(tcap.Aare, acs, st.integers(0, 1), st.integers(1, 2), st.integers(0, 2), user_info),
    st.builds(tcap.Abrt, st.integers(0, 1), user_info),
)
# Parameters: real MAP values (so that pycrate, which decodes MAP, accepts them) or arbitrary TLVs.
ussd_params = ussd_args.map(M.encode_ussd_arg)
codes = local_codes | oids
components = st.one_of(
    st.builds(tcap.Invoke, invoke_ids, st.sampled_from([59, 60, 61]), ussd_params, st.none() | invoke_ids),
    st.builds(tcap.Invoke, invoke_ids, st.just(45), sri_args.map(M.encode_sri_sm_arg), st.none()),
    st.builds(tcap.ReturnResult, invoke_ids, st.sampled_from([59, 60]), ussd_results.map(M.encode_ussd_res),
              st.booleans()),
    st.builds(tcap.ReturnResult, invoke_ids, st.just(45), sri_results.map(M.encode_sri_sm_res), st.booleans()),
    st.builds(tcap.ReturnResult, invoke_ids, st.none(), st.none(), st.booleans()),
    st.builds(tcap.ReturnError, invoke_ids, st.sampled_from([1, 6, 9, 12, 27, 34, 35, 36, 71, 72]), st.none()),
    st.builds(tcap.Reject, st.none() | invoke_ids, st.just(0), st.integers(0, 2)),
    st.builds(tcap.Reject, invoke_ids, st.just(1), st.integers(0, 7)),
    st.builds(tcap.Reject, invoke_ids, st.just(2), st.integers(0, 2)),
    st.builds(tcap.Reject, invoke_ids, st.just(3), st.integers(0, 4)),
)
comp_lists = st.lists(components, max_size=3).map(tuple)
messages = st.one_of(
    st.builds(tcap.Begin, tids, st.none() | dialogues.filter(lambda d: isinstance(d, tcap.Aarq)), comp_lists),
    st.builds(tcap.Continue, tids, tids, st.none() | dialogues.filter(lambda d: isinstance(d, tcap.Aare)),
              comp_lists),
    st.builds(tcap.End, tids, st.none() | dialogues.filter(lambda d: isinstance(d, tcap.Aare)), comp_lists),
    st.builds(tcap.Abort, tids, st.integers(0, 4), st.none()),
    st.builds(tcap.Abort, tids, st.none(), st.none() | dialogues.filter(lambda d: not isinstance(d, tcap.Aarq))),
    st.builds(tcap.Unidirectional, st.none() | acs.map(lambda a: tcap.Audt(a, ())), comp_lists.filter(bool)),
)
