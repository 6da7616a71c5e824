"""Shared primitives of the harness: the ground floor every other module may stand on.

Digests and canonical JSON (:mod:`.hashing`), crash-safe file writes (:mod:`.files`),
every ``HARNESS_*`` variable and default folder (:mod:`.settings`), time stamps and ids
(:mod:`.clock`), the frozen base model of every on-disk format (:mod:`.frozen`), seed
derivation (:mod:`.seeds`), crash points for the reliability tests (:mod:`.crashpoint`)
and the version. Nothing here imports anything else of the harness, so it can never
be part of an import cycle (``make lint`` checks the layering).
"""
