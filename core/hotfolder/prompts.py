"""Companion prompt files: ``NAME.prompt.txt`` beside ``NAME.ext`` gives that image its prompt.

A step whose ``prompt`` parameter contains ``{prompt}`` (the Venice edit operations) gets the
text of the job's prompt file in its place. The daemon claims the prompt file together with
its image (into ``processing/`` beside it) and archives or fails the two together; ``process``
reads the one beside each file it is given. A prompt file is never a job of its own.

The text is read as UTF-8 (a byte-order mark is dropped), at most :data:`PROMPT_MAX_BYTES`,
and trimmed; an empty one, one over the cap, one that is not UTF-8 or one the local-file policy
refuses (a link, a FIFO) is an :class:`~hotfolder.errors.InputError` naming the file, so a
paid call never goes out with an empty or garbled prompt.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import TypeVar

from hotfolder.errors import InputError, UnsafeInputError
from hotfolder.localfiles import MANIFEST_SUFFIXES, STRICT, LocalFilePolicy, open_regular

__all__ = [
    "PROMPT_FIELD",
    "PROMPT_MAX_BYTES",
    "PROMPT_SUFFIX",
    "companion",
    "is_prompt_file",
    "prompt_digest",
    "prompt_file_of",
    "read_prompt",
    "render_prompt",
    "steps_using_prompt",
    "uses_prompt",
]

#: What a companion prompt file's name ends with: ``shoe.jpg`` -> ``shoe.prompt.txt``.
PROMPT_SUFFIX = ".prompt.txt"
#: The placeholder in a step's ``prompt`` that the prompt file's text replaces.
PROMPT_FIELD = "{prompt}"
#: The most bytes a prompt file may hold (Venice takes at most 32,768 characters).
PROMPT_MAX_BYTES = 128 * 1024

P = TypeVar("P", bound=PurePath)


def is_prompt_file(name: str | PurePath) -> bool:
    """Whether ``name`` (a file name or path) is a companion prompt file."""
    base = name.name if isinstance(name, PurePath) else name.rsplit("/", 1)[-1]
    return base.endswith(PROMPT_SUFFIX) and len(base) > len(PROMPT_SUFFIX)


def companion(image: P) -> P:
    """The prompt file that belongs to ``image``: ``NAME.prompt.txt`` beside ``NAME.ext``."""
    return image.with_name(image.stem + PROMPT_SUFFIX)


def uses_prompt(params: object) -> bool:
    """Whether a step's parameters ask for the prompt file (``{prompt}`` in ``prompt``)."""
    prompt = getattr(params, "prompt", None)
    return isinstance(prompt, str) and PROMPT_FIELD in prompt


def steps_using_prompt(steps: Iterable[object]) -> list[int]:
    """The indexes of the steps (each with ``.params``) whose prompt uses ``{prompt}``."""
    return [i for i, step in enumerate(steps) if uses_prompt(getattr(step, "params", None))]


def prompt_file_of(source: str) -> Path | None:
    """Where the prompt file of a job's input would be: beside a local image file; None for a
    URL, a ``data:`` URI or a job manifest (which give their prompts in their overrides)."""
    if "://" in source or source.startswith("data:") or source.lower().endswith(MANIFEST_SUFFIXES):
        return None
    return companion(Path(source))


def read_prompt(path: Path, policy: LocalFilePolicy = STRICT) -> str:
    """The trimmed UTF-8 text of the prompt file ``path``; an InputError naming the file when
    it is missing, refused by the local-file ``policy``, over :data:`PROMPT_MAX_BYTES`, not
    UTF-8, or empty."""
    try:
        fd = open_regular(path, policy)
    except FileNotFoundError:
        msg = f"the prompt file {path} does not exist"
        raise InputError(msg, hint=f"put {path.name} (UTF-8 text) beside its image") from None
    except ValueError as exc:
        msg = f"the prompt file {path} is refused: {exc}"
        raise UnsafeInputError(msg, hint="write the prompt into a regular file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            msg = f"the prompt file {path} is a symbolic link; links are never read through"
            raise UnsafeInputError(msg, hint="put the file itself beside the image") from None
        msg = f"cannot read the prompt file {path}: {exc.strerror}"
        raise InputError(msg, hint="check its permissions") from None
    try:
        data = os.read(fd, PROMPT_MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > PROMPT_MAX_BYTES:
        msg = f"the prompt file {path} is over {PROMPT_MAX_BYTES:,} bytes"
        raise InputError(msg, hint="shorten it: Venice takes at most 32,768 characters")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = (
            f"the prompt file {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start})"
        )
        raise InputError(msg, hint="save it as UTF-8 (most editors offer it)") from None
    text = text.strip()
    if not text:
        msg = f"the prompt file {path} is empty"
        raise InputError(msg, hint="write the prompt into it; a paid call never goes without one")
    return text


def render_prompt(template: str, text: str) -> str:
    """``template`` with every ``{prompt}`` replaced by ``text``."""
    return template.replace(PROMPT_FIELD, text)


def prompt_digest(image: Path) -> str | None:
    """The sha256 of the prompt file beside ``image`` (a claimed input), None without one:
    the same image with another prompt is another job."""
    path = companion(image)
    try:
        fd = open_regular(path, STRICT)
    except (OSError, ValueError):
        return None
    try:
        return hashlib.sha256(os.read(fd, PROMPT_MAX_BYTES + 1)).hexdigest()
    finally:
        os.close(fd)
