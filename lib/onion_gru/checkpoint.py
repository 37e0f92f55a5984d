"""A computation in progress: its entries' write locks, its checkpoint, and ``load_or_compute``,
through which every model and result of the cache (``cache.py``) is computed.

One process computes an entry at a time: ``writing`` holds a lock per entry (``fcntl.flock``,
released however the process ends), and a second process that wants the same entry is told who
holds it (``Busy``) and goes on with other work.  A group in training checkpoints itself every few
minutes (``Checkpoint``); the same group under the same threads, code, CPU and torch continues
from it with the bits of a run never stopped, and any other command leaves it as it is.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from .cache import (CODE_VERSION, RESULTS_ONLY, Missing, cpu_model, data_root, entry_key, get_many, put, state)


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
        for key in sorted(entry_key(*entry) for entry in entries):
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


def load_or_compute(kind: str, entries: list[tuple[str, dict]], train=None) -> list[tuple[dict, dict]]:
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
        # another process may have finished some between the read above and taking their locks
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
ELSEWHERE_ENV = "ONION_GRU_CONTINUE_ELSEWHERE"  # set by ``train --continue-elsewhere``


class Checkpoint:
    """The resumable state of one group in training: ``<name>.pt`` (what ``loop.fit`` saves) and a
    small ``<name>.json`` beside it (the group's entry keys, torch's thread count and version, the
    CPU, CODE_VERSION, the step reached), under ``<data root>/checkpoints/<kind>/``.  A checkpoint
    continues only the same group under the same threads, code, CPU and torch, since the bits
    depend on all of them.  One that shares a member with the group but differs in any of them is
    never thrown away by a changed command: loading raises ``CheckpointMismatch``, which says how to
    resume it or how to discard it explicitly (then it is moved under ``checkpoints/discarded/``)."""

    def __init__(self, kind: str, entries: list[tuple[str, dict]], root: Path | None = None):
        self.keys = [entry_key(*entry) for entry in entries]
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
            why, hint = (mismatch(meta, ours) if weights.exists()
                         else ("no weights beside its json", "nothing is there to continue"))
            elsewhere = meta != ours and os.environ.get(ELSEWHERE_ENV) and only_the_machine_differs(meta, ours)
            if weights.exists() and (meta == ours or elsewhere):
                state = torch.load(weights, map_location="cpu", weights_only=True)
                self.seconds_before = state["seconds"]
                print(f"{self.name}: resuming from its checkpoint at step {state['step']:,}"
                      + (f" (saved with {why}: its bits are now those of two machines)" if elsewhere else ""), flush=True)
                return state
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
    if saved["code_version"] != ours["code_version"]:
        return (f"code version {saved['code_version']} where this run has {ours['code_version']}",
                "its entries' keys are not this code's: nothing here continues it")
    for field, what in (("torch", "torch"), ("cpu_model", "CPU")):
        if saved.get(field) != ours[field]:
            return (f"{what} {saved.get(field, 'unrecorded')} where this run has {ours[field]}",
                    f"continue it where the {what} is the same, or here with --continue-elsewhere (a valid run "
                    "of the same config, its bits those of two machines)")
    return "nothing different", "rerun"


def only_the_machine_differs(saved: dict, ours: dict) -> bool:
    """Whether a checkpoint differs from this run in its CPU or torch alone (``--continue-elsewhere``)."""
    same = lambda meta: {k: v for k, v in meta.items() if k not in ("torch", "cpu_model")}
    return same(saved) == same(ours)


def checkpoints(root: Path | None = None) -> list[dict]:
    """The json of every checkpoint under the cache (a group in progress: its members and step)."""
    return [json.loads(p.read_text()) for p in sorted(((root or data_root()) / "checkpoints").glob("*/*.json"))]
