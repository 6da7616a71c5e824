"""One rule that turns the run seed into a seed for each purpose.

Every consumer of randomness (Python's and numpy's generators, torch, the sample
order, each sample's request, a ``--limit`` subset draw) gets its own seed from the run seed and
a purpose string, so the consumers are independent and each is fixed by the run seed
alone. The rule is written into every record (``seeds.sample_rule``), so anyone can
recompute a seed without this code.
"""

from __future__ import annotations

from harness._internal.hashing import sha256_bytes

SEED_RULE = "int(sha256(f'{run_seed}:{purpose}').hexdigest()[:8], 16)"
"""The rule as the record states it; :func:`derive_seed` is exactly this."""


def derive_seed(run_seed: int, purpose: str) -> int:
    """A 32-bit seed for one purpose (``order``, ``sample:<id>``, ``subset:<id>``, ...)."""
    return int(sha256_bytes(f"{run_seed}:{purpose}".encode())[:8], 16)
