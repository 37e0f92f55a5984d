"""A content-addressed cache for trained models and analysis results under ``data/``.

An entry is a folder ``data/<kind>/<label>-<hash>/`` holding ``weights.pt`` and ``manifest.json``.
The hash covers the full config and ``CODE_VERSION``.  The manifest is written last, by atomic
rename, so it marks a finished entry; it records the sha256 of the weights.  Kinds: ``gru`` and
``analysis`` (trained models), ``positions`` and ``das`` (results computed from cached models:
their numbers are in the manifest, ``weights.pt`` holds little or nothing).

Nothing here deletes a result.  Reading never changes the cache: an entry whose weights are
altered is reported and left as it is; a folder without a manifest is someone's write in progress
(or one that died) and no reader touches it; an entry shipped as its manifest alone (a GPU run:
``scripts/gpu_profile.py``) is a result (``state``: ``RESULTS_ONLY``), read with ``read_manifest``,
and a computation that needs its weights stops and says so.  Only the command that computes an
entry anew moves the old folder under ``data/damaged/``, with a note of why, just before it writes.
One process computes an entry at a time (``writing``: a lock per entry).  Committing entries is how
trained models ship with the project.  A group still training keeps a ``Checkpoint`` under
``data/checkpoints/`` (git-ignored), so that a stopped run continues; a checkpoint is never
thrown away by a command that differs from the one that saved it.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path
import torch

# Bump when a change to training or analysis code changes what a config produces.
CODE_VERSION = 4  # 3: models trained as groups (packed.py), per-member Gumbel noise; 4: convergence rule

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "data"


def data_root() -> Path:
    return Path(os.environ.get("ONION_GRU_DATA", DEFAULT_ROOT))


# Fields added to the configs after entries were shipped, each with the value those entries had
# without naming it (every model was a GRU; no budget had a floor).  A field holding that value is
# left out of the key, at any depth, so the shipped entries keep their keys; any other value is hashed.
ADDED_FIELDS = {"cell": "gru", "floor": None, "orthogonal_map": "matrix_exp", "precision": "fp32"}


def _key_fields(config: dict) -> dict:
    return {k: _key_fields(v) if isinstance(v, dict) else v for k, v in config.items()
            if not (k in ADDED_FIELDS and v == ADDED_FIELDS[k])}


def config_hash(config: dict) -> str:
    """The cache key of a config: its fields (less ``ADDED_FIELDS`` at their old value) and ``CODE_VERSION``."""
    blob = json.dumps({**_key_fields(config), "_code_version": CODE_VERSION}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def entry_key(label: str, config: dict) -> str:
    """An entry's name in the cache, ``<label>-<hash>``: its folder, its lock and its checkpoint's member."""
    return f"{label}-{config_hash(config)}"


def entry_dir(kind: str, label: str, config: dict, root: Path | None = None) -> Path:
    return (root or data_root()) / kind / entry_key(label, config)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cpu_model() -> str:
    """The CPU as /proc/cpuinfo names it (Linux), with vendor, family, model and cache size: a
    virtual machine may show only "AMD EPYC", and the kernels MKL picks depend on all of them."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
                    if ":" in line)
        info = {k.strip(): v.strip() for k, v in info.items()}
        return (f"{info['model name']} ({info['vendor_id']} family {info['cpu family']} model {info['model']} "
                f"stepping {info.get('stepping', '?')}, cache {info.get('cache size', '?')})")
    except (OSError, KeyError):
        return platform.processor() or "unknown"


def environment() -> dict:
    return {"torch": torch.__version__, "python": platform.python_version(), "cpu_model": cpu_model(),
            "threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl_cbwr": os.environ.get("MKL_CBWR"),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "machine": platform.machine()}


WEIGHTS_MISSING = "weights missing (a manifest-only entry: results without the model)"


def damage(path: Path) -> str | None:
    """Why the entry at ``path`` cannot be used, or None if it can (or is absent).  A folder with
    no manifest is a write in progress (or one that died): not damage, never touched by a reader."""
    manifest_path, weights_path = path / "manifest.json", path / "weights.pt"
    if not manifest_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
        expected = manifest["weights_sha256"]
    except (ValueError, KeyError) as err:
        return f"manifest unreadable ({err})"
    if not weights_path.exists():
        return WEIGHTS_MISSING
    if sha256_file(weights_path) != expected:
        return "weights altered (sha256 differs from the manifest's)"
    return None


def read_entry(path: Path) -> tuple[dict, dict] | None:
    """(state_dict, manifest) of a usable entry, None if it is absent, in progress or damaged (a
    damaged one warns).  Reading never changes the cache."""
    if not (path / "manifest.json").exists():
        return None
    why = damage(path)
    if why:
        warnings.warn(f"cache entry {path} cannot be used: {why}; left as it is (the command that "
                      "computes it sets it aside under data/damaged/ first)")
        return None
    state = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    return state, json.loads((path / "manifest.json").read_text())


def set_aside(path: Path, why: str) -> Path:
    """Move an entry folder that is about to be computed anew under ``<data root>/damaged/``, with a
    note of why: nothing a cache held is ever deleted by the code."""
    root = path.parent.parent
    aside = root / "damaged" / path.parent.name / f"{path.name}-{time.strftime('%Y%m%dT%H%M%S')}"
    aside.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, aside)
    (aside / "WHY.txt").write_text(f"{why}\nset aside {time.strftime('%Y-%m-%dT%H:%M:%S')} by pid {os.getpid()}\n")
    return aside


def write_entry(path: Path, state: dict, config: dict, metrics: dict, seconds: float) -> dict:
    """Write atomically: weights to a temp file renamed into place, then the manifest likewise.  A
    folder already there (damaged, or left by a writer that died) is set aside first."""
    if path.exists() and any(path.iterdir()):
        set_aside(path, damage(path) or "no manifest: a write that never finished")
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, suffix=".tmp", delete=False) as f:
        torch.save(state, f)
    os.replace(f.name, path / "weights.pt")
    manifest = {"config": config, "config_hash": config_hash(config), "code_version": CODE_VERSION,
                "metrics": metrics, "train_seconds": round(seconds, 2),
                "weights_sha256": sha256_file(path / "weights.pt"),
                "environment": environment(), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with tempfile.NamedTemporaryFile("w", dir=path, suffix=".tmp", delete=False) as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    os.replace(f.name, path / "manifest.json")
    return manifest


def get_many(kind: str, entries: list[tuple[str, dict]], root: Path | None = None) -> list[tuple[dict, dict] | None]:
    """(state_dict, manifest) of each (label, config) entry, None where it is absent, in progress or
    damaged; nothing is removed."""
    return [read_entry(entry_dir(kind, label, config, root)) for label, config in entries]


def put(kind: str, label: str, config: dict, state: dict, metrics: dict, seconds: float,
        root: Path | None = None) -> tuple[dict, dict]:
    """Store one computed entry; returns (state_dict, manifest) as ``get_many`` would read it."""
    state = {k: v.detach().cpu() for k, v in state.items()}
    return state, write_entry(entry_dir(kind, label, config, root), state, config, metrics, seconds)


def copy_entry(kind: str, source: tuple[str, dict], target: tuple[str, dict], note: dict) -> dict:
    """Store ``source``'s weights and results under ``target``'s key (the same model under an
    equivalent config): its manifest as it was (environment, times) with the new config and ``note``."""
    src = entry_dir(kind, *source)
    manifest = json.loads((src / "manifest.json").read_text())
    dst = entry_dir(kind, *target)
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "weights.pt", dst / "weights.pt.tmp")
    os.replace(dst / "weights.pt.tmp", dst / "weights.pt")
    manifest.update(config=target[1], config_hash=config_hash(target[1]), copied_from={"entry": src.name, **note})
    with tempfile.NamedTemporaryFile("w", dir=dst, suffix=".tmp", delete=False) as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    os.replace(f.name, dst / "manifest.json")
    return manifest


def read_manifest(kind: str, label: str, config: dict, root: Path | None = None) -> dict | None:
    """The manifest of an entry, weights or not; None if there is none."""
    path = entry_dir(kind, label, config, root) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


# What an entry folder is; the one definition of done (``is_done``), read by ``train``, ``status``
# and the notebooks alike.
ABSENT, IN_PROGRESS, DONE, RESULTS_ONLY, DAMAGED = "absent", "in progress", "done", "results only", "damaged"


def state(kind: str, label: str, config: dict, root: Path | None = None) -> str:
    """``DONE`` (manifest and verified weights), ``RESULTS_ONLY`` (a manifest without weights: a run
    shipped as its results), ``IN_PROGRESS`` (a folder without a manifest: someone's write, or one
    that died), ``DAMAGED`` (weights altered, manifest unreadable) or ``ABSENT``."""
    path = entry_dir(kind, label, config, root)
    if not path.exists():
        return ABSENT
    if not (path / "manifest.json").exists():
        return IN_PROGRESS
    why = damage(path)
    return DONE if why is None else RESULTS_ONLY if why == WEIGHTS_MISSING else DAMAGED


def is_done(kind: str, label: str, config: dict, root: Path | None = None) -> bool:
    """Whether the entry's results are in the cache (with or without its weights): nothing to compute."""
    return state(kind, label, config, root) in (DONE, RESULTS_ONLY)


class Missing(LookupError):
    """Entries a reader asked for without leave to compute them."""
