"""The commented starter config that ``hotfolder init`` writes.

The values are data dumped with tomli-w, so they are always valid TOML; the comments are
written around them.
"""

from __future__ import annotations

from typing import Any

import tomli_w

_SECTIONS: list[tuple[str, dict[str, Any]]] = [
    (
        """\
# hotfolder configuration. Check it with: hotfolder validate
# Relative paths are taken from this file's folder.

# Venice's image API. The key is read from the environment, never written here.
# Without a key, `hotfolder process --sandbox` runs every Venice step against a local sandbox.""",
        {
            "venice": {
                "api_key": {"env": "VENICE_API_KEY"},
                "requests_per_minute": 20,
            }
        },
    ),
    (
        """\
# What an input must be before any work is done on it (bigger files are refused). Formats:
# JPEG (and MPO), PNG, WebP, TIFF, GIF, BMP, HEIC/HEIF and AVIF unless `formats` says otherwise.""",
        {
            "imaging": {
                "max_bytes": 200 * 1024 * 1024,
                "max_pixels": 100_000_000,
            }
        },
    ),
    (
        """\
# Watched folders (`hotfolder init` made ./inbox): images that land in `path` go through
# `chain`; other files are left there and named in the log and `hotfolder status`.
# after = "archive" | "delete" | "keep": what happens to the original once it is done.
# Routes pick a chain by path, first match first (`chain` then takes the rest):
#   routes = [{ match = "products/**", chain = "cutout" }, { match = "*_bg.png", chain = "web" }]
# A Venice edit with prompt = "{prompt}" reads NAME.prompt.txt dropped beside NAME.jpg.""",
        {
            "folders": [
                {
                    "path": "inbox",
                    "chain": "web",
                    "after": "archive",
                }
            ]
        },
    ),
    (
        """\
# Chains: steps run in order on each input, then every output is written.
# `hotfolder plugins` lists the operations (op) and sinks available.
# "web": local steps only, free; never enlarges (upscale = false).""",
        {
            "chains": {
                "web": {
                    "steps": [
                        {"op": "auto-orient"},
                        {
                            "op": "resize",
                            "width": 1600,
                            "height": 1600,
                            "mode": "fit",
                            "upscale": False,
                        },
                        {"op": "convert", "format": "jpeg", "quality": 85},
                    ],
                    "outputs": [
                        {"sink": "folder", "path": "outbox/web", "name": "{stem}.{ext}"},
                        {"sink": "sidecar"},
                    ],
                }
            }
        },
    ),
    (
        """\
# "cutout": paid Venice calls. `hotfolder process FILE --chain cutout --dry-run` shows the cost.""",
        {
            "chains": {
                "cutout": {
                    "steps": [
                        {"op": "auto-orient"},
                        {"op": "venice.background-remove", "fit": True},
                        {"op": "venice.upscale", "scale": 2},
                    ],
                    "outputs": [
                        {"sink": "folder", "path": "outbox/cutout", "name": "{stem}-cutout.{ext}"},
                        {"sink": "sidecar"},
                    ],
                }
            }
        },
    ),
]


def starter_config() -> str:
    """The starter config as TOML text with comments."""
    parts = []
    for comment, data in _SECTIONS:
        parts.append(f"{comment}\n{_dump(data)}")
    return "\n".join(parts)


def _dump(data: dict[str, Any]) -> str:
    """``data`` as TOML; ``[[folders]]`` always as an array of tables (tomli-w writes a short
    one inline, which reads as a key of the table above it)."""
    if set(data) == {"folders"}:
        return "\n".join(
            "[[folders]]\n" + tomli_w.dumps(entry, multiline_strings=False)
            for entry in data["folders"]
        )
    return tomli_w.dumps(data, multiline_strings=False)
