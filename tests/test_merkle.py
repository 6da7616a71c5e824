"""RFC 9162 Merkle tree hashes and proofs: known vectors, and properties over random trees.

The vectors are transparency-dev/merkle's (tests/fixtures/rfc9162/README.md): a correct
verifier accepts exactly the ones marked ``wantErr: false``. The properties check the
other direction for proofs we generate: every honest proof verifies, and any change to
a size, a root, a leaf or a proof hash is refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness._internal import merkle

VECTORS = json.loads((Path(__file__).parent / "fixtures" / "rfc9162" / "vectors.json").read_text())
LEAF_INPUTS = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                          "606162636465666768696a6b6c6d6e6f")]
"""transparency-dev/merkle testonly.LeafInputs(): the leaves behind the vectors' trees."""
ROOTS = ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
"""testonly.RootHashes(): the root of the first n leaf inputs, n = 0..8."""


def _b(v: str | None) -> bytes:
    return base64.b64decode(v or "")


def _proof(v: list[str] | None) -> list[bytes]:
    return [_b(x) for x in v or []]


def test_roots_of_the_reference_tree() -> None:
    leaves = [merkle.leaf_hash(x) for x in LEAF_INPUTS]
    for n, want in enumerate(ROOTS):
        assert merkle.root_of(leaves[:n]).hex() == want
    assert merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("v", VECTORS["inclusion"], ids=[v["file"] for v in VECTORS["inclusion"]])
def test_inclusion_vectors(v: dict[str, Any]) -> None:
    ok = merkle.verify_inclusion(v["leafIdx"], v["treeSize"], _b(v["leafHash"]), _proof(v["proof"]), _b(v["root"]))
    assert ok is (not v["wantErr"]), v["desc"]


@pytest.mark.parametrize("v", VECTORS["consistency"], ids=[v["file"] for v in VECTORS["consistency"]])
def test_consistency_vectors(v: dict[str, Any]) -> None:
    ok = merkle.verify_consistency(v["size1"], v["size2"], _b(v["root1"]), _b(v["root2"]), _proof(v["proof"]))
    assert ok is (not v["wantErr"]), v["desc"]


def test_our_proofs_are_the_vectors_proofs() -> None:
    """The happy-path vectors' proofs are exactly what we generate for the same trees."""
    leaves = [merkle.leaf_hash(x) for x in LEAF_INPUTS]
    seen = 0
    for v in VECTORS["inclusion"]:
        if v["desc"] == "happy path" and v["treeSize"] <= len(leaves) and v["root"] == \
                base64.b64encode(merkle.root_of(leaves[:v["treeSize"]])).decode():
            assert merkle.inclusion_proof(v["leafIdx"], leaves[:v["treeSize"]]) == _proof(v["proof"])
            seen += 1
    for v in VECTORS["consistency"]:
        if v["desc"] == "happy path" and v["size2"] <= len(leaves) and v["size1"] > 0:
            assert merkle.consistency_proof(v["size1"], leaves[:v["size2"]]) == _proof(v["proof"])
            seen += 1
    assert seen >= 8


def _leaves(n: int, salt: int) -> list[bytes]:
    return [merkle.leaf_hash(b"%d:%d" % (salt, i)) for i in range(n)]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.data())
def test_every_inclusion_proof_verifies_and_any_change_fails(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n, n)
    root = merkle.root_of(leaves)
    i = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(i, leaves)
    assert merkle.verify_inclusion(i, n, leaves[i], proof, root)
    other = data.draw(st.integers(0, n - 1).filter(lambda j: j != i)) if n > 1 else None
    if other is not None:
        assert not merkle.verify_inclusion(other, n, leaves[i], proof, root)
        assert not merkle.verify_inclusion(i, n, leaves[other], proof, root)
    assert not merkle.verify_inclusion(i, n, leaves[i], proof, merkle.leaf_hash(b"x"))
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        bad = list(proof)
        bad[k] = bytes(b ^ (1 << (bit % 8)) if j == bit // 8 else b for j, b in enumerate(bad[k]))
        assert not merkle.verify_inclusion(i, n, leaves[i], bad, root)
        assert not merkle.verify_inclusion(i, n, leaves[i], proof[:-1], root)
    assert not merkle.verify_inclusion(i, n, leaves[i], [*proof, leaves[0]], root)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.data())
def test_every_consistency_proof_verifies_and_forks_fail(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n, 7)
    m = data.draw(st.integers(1, n))
    proof = merkle.consistency_proof(m, leaves)
    old, new = merkle.root_of(leaves[:m]), merkle.root_of(leaves)
    assert merkle.verify_consistency(m, n, old, new, proof)
    # a fork: the same sizes, but one leaf of the shared prefix differs
    j = data.draw(st.integers(0, m - 1))
    forked = list(leaves)
    forked[j] = merkle.leaf_hash(b"forked")
    assert not merkle.verify_consistency(m, n, merkle.root_of(forked[:m]), new, proof)
    assert not merkle.verify_consistency(m, n, old, merkle.root_of(forked), proof)
    assert not merkle.verify_consistency(m, n, old, merkle.root_of(forked), merkle.consistency_proof(m, forked))
    if m < n:
        assert not merkle.verify_consistency(n, m, new, old, proof)  # a shorter log is never consistent
        k = data.draw(st.integers(0, len(proof) - 1))
        bad = list(proof)
        bad[k] = merkle.leaf_hash(bad[k])
        assert not merkle.verify_consistency(m, n, old, new, bad)


def test_builder_matches_recursive_root() -> None:
    for n in range(0, 70):
        leaves = _leaves(n, 3)
        b = merkle.TreeBuilder()
        for leaf in leaves:
            b.add(leaf)
        assert b.root() == (merkle._mth(leaves, 0, n) if n else merkle.EMPTY_ROOT) and b.size == n


def test_bad_arguments_are_refused() -> None:
    leaves = _leaves(4, 1)
    with pytest.raises(ValueError):
        merkle.inclusion_proof(4, leaves)
    with pytest.raises(ValueError):
        merkle.consistency_proof(0, leaves)
    with pytest.raises(ValueError):
        merkle.consistency_proof(5, leaves)
    assert not merkle.verify_inclusion(0, 1, b"short", [], b"short")
