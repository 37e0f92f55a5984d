"""What an executed notebook needs beyond the results: its profile, and its file made a function of
its inputs."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .profiles import Profile, get_profile

PROFILE_ENV = "ONION_GRU_PROFILE"  # nbval cannot inject parameters; CI sets this to "smoke"


def active_profile(name: str) -> Profile:
    """The notebook's ``profile`` parameter, unless the environment names another."""
    return get_profile(os.environ.get(PROFILE_ENV) or name)


def tidy_notebook(path: Path) -> None:
    """Make an executed notebook a function of its inputs: drop papermill's and the kernel's timings
    and number the cells (jupytext gives each conversion random cell ids), so that rerunning
    ``make reproduce`` on the same cache rewrites the same bytes.  Consecutive stream outputs are
    joined: where the kernel flushes a print is a matter of timing (a busy machine splits one print
    into two outputs)."""
    nb = json.loads(Path(path).read_text())
    for key in ("start_time", "end_time", "duration"):
        nb["metadata"].get("papermill", {}).pop(key, None)
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i:02d}"
        cell["metadata"].pop("execution", None)
        cell["metadata"].pop("papermill", None)
        outputs = []
        for out in cell.get("outputs", []):
            last = outputs[-1] if outputs else {}
            if out.get("output_type") == "stream" and last.get("output_type") == "stream" \
                    and last.get("name") == out.get("name"):
                text = "".join(last["text"]) + "".join(out["text"])
                last["text"] = text.splitlines(keepends=True)
            else:
                outputs.append(out)
        if "outputs" in cell:
            cell["outputs"] = outputs
    Path(path).write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


