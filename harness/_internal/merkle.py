"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashes and proofs, over SHA-256.

A dossier's entries are the leaves of a Merkle tree so that a signed tree head (a
checkpoint) commits to the whole log at once, and so that "the log I saw then" and
"the log I see now" can be compared with a short consistency proof: the only way to
tell an append-only log from a truncated or forked one. The rules are section 2.1 of
RFC 9162 (the same as RFC 6962's): a leaf hashes as SHA-256(0x00 || bytes), an inner
node as SHA-256(0x01 || left || right), and the left subtree of n leaves holds the
largest power of two below n. The verification functions follow the RFC's algorithms
step by step, and refuse every malformed input instead of raising on it, because their
inputs (proofs, roots) come from files a dishonest party may have written.

Pure functions over ``bytes``: nothing here reads files or knows what a dossier is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree: the hash of the empty string (RFC 9162, 2.1.1)."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || data); the prefix keeps leaves and nodes apart."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The size of the left subtree of ``n`` > 1 leaves: the largest power of two below ``n``."""
    return 1 << ((n - 1).bit_length() - 1)


class TreeBuilder:
    """The root of a growing tree from its leaf hashes in order, keeping O(log n) hashes.

    The stack holds the roots of the perfect subtrees that the leaves so far decompose
    into, largest first; the tree's root folds them from the right. A log of any length
    is therefore hashed in one pass without holding its leaves.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (height, hash), heights strictly decreasing

    def add(self, leaf: bytes) -> None:
        """Append a leaf hash (not the leaf's data: see :func:`leaf_hash`)."""
        height, h = 0, leaf
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            height, h = height + 1, node_hash(left, h)
        self._stack.append((height, h))
        self.size += 1

    def root(self) -> bytes:
        """The root of the tree of the leaves added so far (:data:`EMPTY_ROOT` for none)."""
        if not self._stack:
            return EMPTY_ROOT
        h = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            h = node_hash(left, h)
        return h


def root_of(leaves: Iterable[bytes]) -> bytes:
    """The root (MTH) of the tree whose leaf hashes are ``leaves``."""
    builder = TreeBuilder()
    for leaf in leaves:
        builder.add(leaf)
    return builder.root()


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH of ``leaves[lo:hi]`` (hi > lo), without copying slices."""
    if hi - lo == 1:
        return leaves[lo]
    k = _split(hi - lo)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``leaves`` (RFC 9162, 2.1.3.1), leaf to root."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaves)} leaves")
    path: list[bytes] = []
    lo, hi = 0, len(leaves)
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_mth(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(_mth(leaves, lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """The proof that the tree of the first ``old_size`` leaves is a prefix of the tree of
    ``leaves`` (RFC 9162, 2.1.4.1, SUBPROOF); empty when the sizes are equal."""
    n = len(leaves)
    if not 0 < old_size <= n:
        raise ValueError(f"no consistency proof from {old_size} to {n} leaves")

    def sub(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if whole else [_mth(leaves, lo, hi)]
        k = _split(hi - lo)
        if m <= k:
            return [*sub(m, lo, lo + k, whole), _mth(leaves, lo + k, hi)]
        return [*sub(m - k, lo + k, hi, False), _mth(leaves, lo, lo + k)]

    return sub(old_size, 0, n, True)


def _ok_hash(h: object) -> bool:
    return isinstance(h, bytes) and len(h) == HASH_SIZE


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` with ``root``
    (RFC 9162, 2.1.3.2). Never raises on malformed input: it is simply not a proof."""
    if not (0 <= index < size) or not _ok_hash(leaf) or not _ok_hash(root) or not all(map(_ok_hash, proof)):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows the tree (``old_size``, ``old_root``) is a prefix of
    (``new_size``, ``new_root``) (RFC 9162, 2.1.4.2). A proof from the empty tree is
    meaningless and refused; equal sizes need an empty proof and equal roots."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof or not _ok_hash(old_root) or not _ok_hash(new_root) or not all(map(_ok_hash, proof)):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
