"""A content-addressed cache for trained models and analysis results under ``data/``.

An entry is a folder ``data/<kind>/<label>-<hash>/`` holding ``weights.pt`` and ``manifest.json``.
The hash covers the full config and ``CODE_VERSION``.  The manifest is written last, by atomic
rename, so it marks a finished entry; it records the sha256 of the weights, and an entry whose
weights are missing, truncated or altered is reported with a warning and recomputed, never used.
Kinds: ``gru`` and ``analysis`` (trained models), ``positions`` and ``das`` (results computed from
cached models: their numbers are in the manifest, ``weights.pt`` holds little or nothing).
Committing entries is how trained models ship with the project.  A group still training keeps
a ``Checkpoint`` under ``data/checkpoints/`` (git-ignored), so that a stopped run continues.  A run on a borrowed GPU ships its
large entries as manifests alone (results and curves, no weights: ``scripts/gpu_profile.py``); the
report reads them with ``read_manifest``, and anything that needs the model recomputes it.
"""
from __future__ import annotations

import contextlib
import fcntl
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


def entry_dir(kind: str, label: str, config: dict, root: Path | None = None) -> Path:
    return (root or data_root()) / kind / f"{label}-{config_hash(config)}"


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
        return "weights missing (a manifest-only entry: results without the model)"
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
    return DONE if why is None else RESULTS_ONLY if why.startswith("weights missing") else DAMAGED


def is_done(kind: str, label: str, config: dict, root: Path | None = None) -> bool:
    """Whether the entry's results are in the cache (with or without its weights): nothing to compute."""
    return state(kind, label, config, root) in (DONE, RESULTS_ONLY)


class Missing(LookupError):
    """Entries a reader asked for without leave to compute them."""


class Busy(RuntimeError):
    """Another process holds the lock of an entry this one would compute: one writer per entry."""


@contextlib.contextmanager
def writing(kind: str, entries: list[tuple[str, dict]], root: Path | None = None):
    """Hold the write lock of each entry (``fcntl.flock`` on ``<data root>/locks/<kind>/<key>.lock``,
    released when the process ends, however it ends), or raise ``Busy`` naming the holder."""
    folder = (root or data_root()) / "locks" / kind
    folder.mkdir(parents=True, exist_ok=True)
    held = []
    try:
        for key in sorted(f"{label}-{config_hash(config)}" for label, config in entries):
            f = open(folder / f"{key}.lock", "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                f.close()
                raise Busy(f"{kind}/{key} is being computed by {holder}; skipped here") from None
            f.seek(0), f.truncate(), f.write(f"pid {os.getpid()} on {platform.node()}"), f.flush()
            held.append(f)
        yield
    finally:
        for f in held:
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()


def get_or_train(kind: str, entries: list[tuple[str, dict]], train=None) -> list[tuple[dict, dict]]:
    """(state_dict, manifest) of each entry: from the cache, the missing ones computed now as one
    group by ``train(missing indices, checkpoint)`` -> (states, metrics), one per missing entry, and
    stored one entry per model (``train`` None: missing entries raise ``Missing``).  The missing
    entries are computed under their write locks (``writing``); the group's checkpoint goes once
    its entries are written."""
    found = get_many(kind, entries)
    missing = [i for i, f in enumerate(found) if f is None]
    if missing and train is None:
        raise Missing(", ".join(entries[i][0] for i in missing))
    if not missing:
        return found
    results_only = [entries[i][0] for i in missing if state(kind, *entries[i]) == RESULTS_ONLY]
    if results_only:
        raise Missing(f"{', '.join(results_only)}: shipped as results without weights, and this needs the "
                      "weights; train them where the weights can be kept (the entries are left as they are)")
    with writing(kind, [entries[i] for i in missing]):
        # another process may have finished them while this one waited for its turn
        for i, again in zip(missing, get_many(kind, [entries[i] for i in missing])):
            found[i] = again
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            checkpoint, start = Checkpoint(kind, [entries[i] for i in missing]), time.time()
            states, metrics = train(missing, checkpoint)
            seconds = checkpoint.seconds_before + time.time() - start
            for j, i in enumerate(missing):
                found[i] = put(kind, *entries[i], states[j], metrics[j], seconds)
            checkpoint.remove()
    return found


def checkpoint_seconds() -> float:
    """How often a running group is checkpointed (at its next evaluation point), in seconds."""
    return float(os.environ.get("ONION_GRU_CHECKPOINT_SECONDS", 300))


class CheckpointMismatch(RuntimeError):
    """A group's checkpoint was saved under other threads, code, CPU or torch: it is kept, and the
    command that would continue it differently stops (``train --discard-checkpoints`` discards it)."""


DISCARD_ENV = "ONION_GRU_DISCARD_CHECKPOINTS"  # set by ``train --discard-checkpoints``, read by its workers


class Checkpoint:
    """The resumable state of one group in training: ``<name>.pt`` (what ``train.fit`` saves) and a
    small ``<name>.json`` beside it (the group's entry keys, torch's thread count and version, the
    CPU, CODE_VERSION, the step reached), under ``<data root>/checkpoints/<kind>/``.  A checkpoint
    continues only the same group under the same threads, code, CPU and torch, since the bits
    depend on all of them.  One that shares a member with the group but differs in any of them is
    never thrown away by a changed command: loading raises ``CheckpointMismatch``, which says how to
    resume it or how to discard it explicitly (then it is moved under ``checkpoints/discarded/``)."""

    def __init__(self, kind: str, entries: list[tuple[str, dict]], root: Path | None = None):
        self.keys = [f"{label}-{config_hash(config)}" for label, config in entries]
        self.kind, self.config = kind, entries[0][1]  # what the group trains (read by ``status``)
        self.name = "+".join(label for label, _ in entries)
        self.folder = (root or data_root()) / "checkpoints" / kind
        digest = hashlib.sha256("+".join(self.keys).encode()).hexdigest()[:12]
        self.path = self.folder / f"{entries[0][0]}-x{len(entries)}-{digest}.pt"
        self.every = checkpoint_seconds()
        self.seconds_before = 0.0  # training time of the runs before this one (from ``load``)

    def meta(self) -> dict:
        return {"members": self.keys, "threads": torch.get_num_threads(), "code_version": CODE_VERSION,
                "torch": torch.__version__, "cpu_model": cpu_model()}

    def load(self) -> dict | None:
        """The saved state of this group, or None if it has none; a checkpoint of any of its members
        saved otherwise raises ``CheckpointMismatch`` (or, under ``DISCARD_ENV``, is moved aside)."""
        ours = self.meta()
        for info_path in sorted(self.folder.glob("*.json")):
            info = json.loads(info_path.read_text())
            meta, weights = info["meta"], info_path.with_suffix(".pt")
            if not set(meta["members"]) & set(self.keys):
                continue
            if meta == ours and weights.exists():
                state = torch.load(weights, map_location="cpu", weights_only=True)
                self.seconds_before = state["seconds"]
                print(f"{self.name}: resuming from its checkpoint at step {state['step']:,}", flush=True)
                return state
            why, hint = mismatch(meta, ours) if weights.exists() else ("its weights missing", "nothing to continue")
            if os.environ.get(DISCARD_ENV):
                aside = info_path.parent.parent / "discarded" / time.strftime("%Y%m%dT%H%M%S")
                aside.mkdir(parents=True, exist_ok=True)
                for f in (info_path, weights):
                    if f.exists():
                        os.replace(f, aside / f.name)
                print(f"{self.name}: checkpoint {weights.name} ({why}) moved to {aside}; starting from step 0",
                      flush=True)
                continue
            raise CheckpointMismatch(f"{self.name}: checkpoint {info_path.with_suffix('.pt')} at step "
                                     f"{info.get('step', '?'):,} was saved with {why}; kept: {hint}, or pass "
                                     f"--discard-checkpoints to set it aside and start from step 0")
        return None

    def save(self, state: dict) -> None:
        """Atomically: the state first, then the json that names it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as f:
            torch.save(state, f)
        os.replace(f.name, self.path)
        info = {"meta": self.meta(), "name": self.name, "kind": self.kind, "config": self.config, "step": state["step"],
                "seconds": round(state["seconds"], 1), "saved": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with tempfile.NamedTemporaryFile("w", dir=self.folder, suffix=".tmp", delete=False) as f:
            json.dump(info, f, indent=1)
        os.replace(f.name, self.path.with_suffix(".json"))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_suffix(".json").unlink(missing_ok=True)


def mismatch(saved: dict, ours: dict) -> tuple[str, str]:
    """Why a checkpoint's meta is not this run's (the first field that differs) and how to continue it."""
    if saved["members"] != ours["members"]:
        return (f"another group of {len(saved['members'])} models sharing a member with this one",
                "rerun the command that made it (the same sizes, variants, seeds, methods and --group) to continue it")
    if saved["threads"] != ours["threads"]:
        return (f"{saved['threads']} torch threads where this run has {ours['threads']}",
                f"rerun with OMP_NUM_THREADS={saved['threads']} (and workers x threads <= cores) to continue it")
    for field, what in (("code_version", "code version"), ("torch", "torch"), ("cpu_model", "CPU")):
        if saved.get(field) != ours[field]:
            return (f"{what} {saved.get(field, 'unrecorded')} where this run has {ours[field]}",
                    f"continue it where the {what} is the same")
    return "nothing different", "rerun"


def checkpoints(root: Path | None = None) -> list[dict]:
    """The json of every checkpoint under the cache (a group in progress: its members and step)."""
    return [json.loads(p.read_text()) for p in sorted(((root or data_root()) / "checkpoints").glob("*/*.json"))]
