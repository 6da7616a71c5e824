"""The running environment: does it match the package's lockfile, and what is it?

A dependency that moved is one of the commonest reasons a score does not reproduce,
so every record says which lock it was run against and, package by package, where
the running interpreter differs from it.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from harness._internal.frozen import Frozen, Sparse
from harness._internal.hashing import sha256_file
from harness._internal.version import __version__
from harness.errors import LockfileError

_SOURCE_ROOT = Path(__file__).resolve().parent.parent
"""The folder holding the ``harness`` package: a git checkout when run from source."""


class Mismatch(Frozen):
    """A locked distribution whose installed version differs (``installed`` None: missing)."""

    name: str
    locked: str
    installed: str | None


class LockRef(Frozen):
    """The package's lockfile and whether the running environment matched it."""

    lockfile: str
    sha256: str
    matches: bool
    checked: int
    mismatch_count: int
    mismatches: list[Mismatch]
    """The first 50 mismatches; ``mismatch_count`` is all of them."""


class HarnessInfo(Frozen):
    """The harness that ran: its version and, from a checkout, its commit and whether
    its code had uncommitted changes (None from an installed wheel)."""

    version: str
    commit: str | None
    dirty: bool | None


class AcceleratorInfo(Sparse):
    """What did the arithmetic: ``device`` ``cpu`` or ``cuda``; for a GPU its name, how many,
    compute capability, driver, and the CUDA and torch versions (a score can move with any
    of them). ``source`` says who told us: ``torch`` (in-process) or ``nvidia-smi`` (a
    launched server, whose own torch we cannot ask). Only the fields known are written."""

    device: str
    name: str | None = None
    count: int | None = None
    capability: str | None = None
    driver: str | None = None
    cuda: str | None = None
    torch: str | None = None
    source: str | None = None


class PlatformInfo(Sparse):
    """The interpreter and machine. ``accelerator`` is written only when known (records made
    before it existed have none, and read and write back byte for byte)."""

    python: str
    implementation: str
    system: str
    machine: str
    platform: str
    executable_prefix_is_venv: bool
    accelerator: AcceleratorInfo | None = None


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str | None


def parse_lockfile(path: Path) -> list[Pin]:
    """Read a ``uv export --format requirements-txt`` lock; every pin must carry hashes."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LockfileError(f"cannot read lockfile {path}: {e}", hint="regenerate it with `make lock`") from None
    logical: list[str] = []
    buf = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and not buf):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        logical.append(buf + stripped)
        buf = ""
    if buf:
        logical.append(buf)
    pins = []
    for entry in logical:
        if entry.startswith(("-e ", "--", "./", ".")):
            continue
        parts = entry.split(" --hash=")
        spec = parts[0].strip()
        if len(parts) < 2:
            raise LockfileError(
                f"lockfile {path.name}: {spec!r} has no --hash",
                hint="a lockfile must pin hashes; regenerate it with `make lock`",
            )
        try:
            req = Requirement(spec)
        except InvalidRequirement as e:
            raise LockfileError(f"lockfile {path.name}: cannot parse {spec!r}: {e}") from None
        versions = [s.version for s in req.specifier if s.operator == "=="]
        if len(versions) != 1:
            raise LockfileError(f"lockfile {path.name}: {spec!r} is not pinned with ==")
        pins.append(Pin(canonicalize_name(req.name), versions[0], str(req.marker) if req.marker else None))
    if not pins:
        raise LockfileError(f"lockfile {path.name} pins nothing", hint="regenerate it with `make lock`")
    return pins


def _header(text: str, field: str) -> str | None:
    """A field of a core-metadata header (the part before the first blank line)."""
    prefix = field.lower() + ":"
    for line in text.split("\n"):
        if not line.strip():
            return None
        if line[: len(prefix)].lower() == prefix:
            return line[len(prefix):].strip()
    return None


def installed_versions() -> dict[str, str]:
    """{canonical name: version} of the installed distributions, first on sys.path wins.

    Reads only the Name and Version headers of each METADATA file: ``Distribution.metadata``
    parses the whole file as an e-mail message, which costs about a second for a
    torch-sized environment and is most of a run's start-up otherwise.
    """
    out: dict[str, str] = {}
    for d in metadata.distributions():
        text = d.read_text("METADATA") or d.read_text("PKG-INFO") or ""
        name, version = _header(text, "Name"), _header(text, "Version")
        if name and version:
            out.setdefault(canonicalize_name(name), version)
    return out


def environment_match(path: Path) -> LockRef:
    """Compare installed distributions with the lock, for pins whose markers apply here."""
    pins = parse_lockfile(path)
    installed = installed_versions()
    mismatches: list[Mismatch] = []
    checked = 0
    for pin in pins:
        if pin.marker:
            try:
                if not Requirement(f"x; {pin.marker}").marker.evaluate():  # type: ignore[union-attr]
                    continue
            except InvalidRequirement:
                pass
        checked += 1
        have = installed.get(pin.name)
        if have != pin.version:
            mismatches.append(Mismatch(name=pin.name, locked=pin.version, installed=have))
    return LockRef(
        lockfile=path.name,
        sha256=sha256_file(path),
        matches=not mismatches,
        checked=checked,
        mismatches=mismatches[:50],
        mismatch_count=len(mismatches),
    )


def _git_commit() -> dict[str, Any]:
    """The harness's own commit, when it runs from a checkout (None from a wheel)."""
    root = _SOURCE_ROOT
    if not (root / ".git").exists():
        return {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "harness"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(status) if commit else None}


def harness_info() -> HarnessInfo:
    """The harness that runs: version, and from a checkout its commit and whether it is dirty."""
    return HarnessInfo(version=__version__, **_git_commit())


def platform_info(accelerator: AcceleratorInfo | None = None) -> PlatformInfo:
    """The interpreter and machine the run happened on (and the accelerator, when the
    backend knows it: the transformers backend always, a launched vLLM from nvidia-smi)."""
    extra = {"accelerator": accelerator} if accelerator is not None else {}
    return PlatformInfo(
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        system=platform.system(),
        machine=platform.machine(),
        platform=platform.platform(terse=True),
        executable_prefix_is_venv=sys.prefix != sys.base_prefix,
        **extra,
    )


def cpu_accelerator() -> AcceleratorInfo:
    """The CPU as an accelerator: its model name (from /proc/cpuinfo where there is one),
    since float arithmetic of one model can differ between CPU families."""
    name = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    name = line.partition(":")[2].strip() or None
                    break
    except OSError:
        pass
    return AcceleratorInfo(device="cpu", **({"name": name} if name else {}))


def nvidia_smi_gpus() -> list[dict[str, str]]:
    """The GPUs nvidia-smi lists (name, driver), or [] when it is absent or fails."""
    import shutil

    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [exe, "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    gpus = []
    for line in out.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2 and parts[0]:
            gpus.append({"name": parts[0], "driver": parts[1], "capability": parts[2] if len(parts) > 2 else ""})
    return gpus


def gpu_accelerator_from_smi() -> AcceleratorInfo | None:
    """The GPUs of this machine as nvidia-smi names them (for a launched vLLM server, which
    uses them from its own process); None without nvidia-smi or GPUs."""
    gpus = nvidia_smi_gpus()
    if not gpus:
        return None
    names = sorted({g["name"] for g in gpus})
    caps = sorted({g["capability"] for g in gpus if g["capability"]})
    return AcceleratorInfo(device="cuda", name=" + ".join(names), count=len(gpus), driver=gpus[0]["driver"],
                           source="nvidia-smi", **({"capability": caps[0]} if len(caps) == 1 else {}))


def torch_accelerator(torch: Any, device: str) -> AcceleratorInfo:
    """The accelerator an in-process torch model runs on (``device`` ``cpu`` or ``cuda``)."""
    if device != "cuda":
        return cpu_accelerator()
    index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    smi = nvidia_smi_gpus()
    return AcceleratorInfo(
        device="cuda", name=torch.cuda.get_device_name(index), count=torch.cuda.device_count(),
        capability=f"{major}.{minor}", driver=smi[0]["driver"] if smi else None, cuda=torch.version.cuda,
        torch=torch.__version__, source="torch",
    )
