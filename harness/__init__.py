"""A reproducible harness for LLM safety benchmarks.

The public surface is small on purpose: load a sealed package, run it, verify what
was recorded, and compare two runs. Everything else lives in private modules.
"""

from __future__ import annotations

__version__ = "0.1.0"
