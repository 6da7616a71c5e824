"""The fast canonical JSON path gives byte-for-byte what the RFC 8785 reference gives."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from harness._internal.hashing import canonical_json

_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_matches_the_reference(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_the_awkward_cases() -> None:
    cases = [
        {"\ue000": 1, "\U0001f600": 2, "a": 3},  # UTF-16 key order differs from code points
        [1e21, 1e-7, 1.5e-5, 1e16, 123456789012345680.0, -0.0, 0.1, 2.0, 1e-4],
        [2.0**53, -(2.0**53), 2.0**53 + 2, 0.5],  # integral floats past 2**53: no ".0" in ECMAScript
        "\x7f\x1f\u2028 \"\\",
        {"line": {"timing": {"latency_s": 0.0123}, "seed": 4294967295, "ok": True, "err": None}},
    ]
    for value in cases:
        assert canonical_json(value) == rfc8785.dumps(value)
