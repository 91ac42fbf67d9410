"""The JSON record of how one output was made: job, input hash, steps, cost, size and whether
it was simulated. The ``sidecar`` sink writes it next to each output; other sinks (a webhook,
an object store's metadata) send the same record.

``source`` names the input where it was found (for the daemon, the file dropped into the
watched folder, not its processing copy; a ``data:`` URI cut short) and ``archived`` where the
original went once done (a path, ``deleted``, ``kept``; None when nothing moves it).

``steps`` gives each step's parameters as sent: a prompt with ``{prompt}`` in it shows the
text of the job's prompt file in its place (and ``notes.prompt_file`` names that file).

``cost_usd`` is what the output's paid steps cost (steps reused from a checkpoint included);
``simulated_usd`` is the part of it that simulated steps stand for, which nobody paid. The
output is ``simulated`` when its pixels came from a simulated answer at any step (each step
says so in its own ``simulated``), however it was encoded afterwards: its file then carries
the simulated mark too (see :mod:`hotfolder.imaging`).

``notes`` says what the output leaves out of its input: an animated GIF, WebP or APNG (or a
multi-page TIFF) of which only the first frame was used."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from hotfolder import imaging
from hotfolder.errors import HotfolderError

if TYPE_CHECKING:
    from hotfolder.artifact import Artifact
    from hotfolder.components import SinkContext


#: EXIF orientations that turn the image by 90 degrees (width and height swap on display).
def sidecar_record(context: SinkContext, artifact: Artifact, file: Path | None) -> dict[str, Any]:
    """What a sidecar says about one output ``file`` (or the artifact, when None)."""
    data = file.read_bytes() if file is not None else artifact.data
    job = context.job
    return {
        "hotfolder_version": version("hotfolder"),
        "job_id": job.id,
        # The input as it was dropped (not the daemon's processing copy; a data: URI cut
        # short), and where the original went once done (None: nobody moved it).
        "source": job.display,
        "archived": job.archive,
        "input_sha256": context.input_sha256,
        "chain": job.chain,
        "output": {
            "file": str(file) if file is not None else None,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "media_type": artifact.media_type,
            **_dimensions(data, artifact),
        },
        "steps": [step.to_dict() for step in context.steps],
        "cost_usd": round(sum(step.cost_usd or 0.0 for step in context.steps), 6),
        "simulated_usd": round(
            sum(step.cost_usd or 0.0 for step in context.steps if step.simulated), 6
        ),
        "simulated": artifact.simulated or any(step.simulated for step in context.steps),
        "notes": _notes(artifact),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _notes(artifact: Artifact) -> list[str]:
    """What a reader of the output should know about its input: an animation (or a multi-page
    file) of which only the first frame was used. A step's own notes (such as a conversion to
    sRGB for a Venice upload, ``colour``) are in its ``steps[i].notes``."""
    frames = artifact.info.get("frames")
    if isinstance(frames, int) and frames > 1:
        return [
            f"the input has {frames} frames (an animation or a multi-page file); only the "
            'first frame was used ([imaging] animation = "reject" refuses such files)'
        ]
    return []


def _dimensions(data: bytes, artifact: Artifact) -> dict[str, Any]:
    """Width and height as displayed (EXIF orientation applied) and the mode, from the header."""
    try:
        probe = imaging.probe(data, artifact.limits, name=artifact.name)
    except HotfolderError as exc:
        logger.warning("sidecar: cannot read the size of {}: {}", artifact.name, exc)
        return {"width": None, "height": None, "mode": None}
    width, height = probe.upright_size
    return {"width": width, "height": height, "mode": probe.mode}
