"""The built-in sinks: ``folder`` writes the result into a folder, ``sidecar`` writes a JSON
record of how each output was made next to it.

Both write atomically (temporary file, fsync, rename, fsync of the folder) with an explicit
file mode, and never outside their folder: see :mod:`hotfolder.naming`.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from loguru import logger
from pydantic import BeforeValidator, field_validator

import hotfolder
from hotfolder import SinkError, sidecar_record
from hotfolder.fsutil import atomic_write, fsync_dir, write_failure, write_temp
from hotfolder.naming import OutputName, join_inside, render_name, sanitize_component

if TYPE_CHECKING:
    from hotfolder import Register

#: How many ``-N`` suffixes ``on_collision = "unique"`` tries before giving up.
MAX_UNIQUE = 10_000
_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def _parse_mode(value: Any) -> Any:
    """``0o644`` (a TOML octal integer) or ``"0644"`` / ``"0o644"`` (a string) -> 420."""
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("0o")
        if not re.fullmatch(r"[0-7]{1,4}", text):
            msg = f"file mode {value!r} is not an octal number like '0644'"
            raise ValueError(msg)
        value = int(text, 8)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o777:
        msg = f"file mode {value!r} must be 0o000-0o777; write it as 0o644 or '0644'"
        raise ValueError(msg)
    return value


#: A file mode parameter: permission bits only, given as an int or an octal string.
FileMode = Annotated[int, BeforeValidator(_parse_mode)]


class FolderSink(hotfolder.Sink):
    """Writes the final image into a folder under a name made from a template."""

    name = "folder"
    summary = "write the result into a folder: atomic, explicit mode, never outside it"

    class Params(hotfolder.Params):
        path: hotfolder.ConfigPath
        #: Fields: {stem} {ext} {srcext} (the input's extension) {dir} (the input's subfolder
        #: in its folder, ``{dir}/...``) {chain} {date} {hash8} {n} (``{n:04d}`` pads);
        #: '/' = subfolder.
        name: OutputName = "{stem}.{ext}"
        mode: FileMode = 0o644
        on_collision: Literal["unique", "overwrite", "skip"] = "unique"

    params: Params

    def write(
        self, context: hotfolder.SinkContext, artifact: hotfolder.Artifact
    ) -> list[hotfolder.Output]:
        target = join_inside(self.params.path, render_name(self.params.name, context, artifact))
        data = artifact.data
        policy = self.params.on_collision
        written = publish(target, data, mode=self.params.mode, on_collision=policy)
        if written is None:
            logger.info("{}: {} exists; skipped (on_collision)", context.job.display, target)
            return []
        output = hotfolder.Output(self.name, str(written), len(data), artifact.media_type)
        return [output]


def publish(
    target: Path, data: bytes, *, mode: int, on_collision: Literal["unique", "overwrite", "skip"]
) -> Path | None:
    """Atomically write ``data`` at ``target``, or beside it, by the collision policy.

    ``overwrite`` replaces whatever is there (a link there is replaced, not followed);
    ``unique`` and ``skip`` stage the file under a temporary name and then hard-link it to a
    free name, which fails rather than replaces if another writer got there first. ``unique``
    takes a name that already holds exactly these bytes as written: a job run again (after a
    crash or a stop) does not leave a second copy. Returns where the data went, or None when
    ``skip`` found the name taken.
    """
    try:
        if on_collision == "overwrite":
            atomic_write(target, data, mode=mode)
            return target
        if on_collision == "skip" and os.path.lexists(target):
            return None
        return _publish_new(target, data, mode, unique=on_collision == "unique")
    except OSError as exc:
        raise write_failure(exc, f"cannot write {target}") from exc


def _publish_new(target: Path, data: bytes, mode: int, *, unique: bool) -> Path | None:
    staging = write_temp(target, data, mode=mode)
    try:
        names = itertools.chain([target], _numbered(target)) if unique else [target]
        for candidate in names:
            if _claim(staging, candidate) or (unique and _holds(candidate, data)):
                return candidate
    finally:
        with suppress(FileNotFoundError):
            os.unlink(staging)
        fsync_dir(target.parent)
    if unique:
        msg = f"{target} and its {MAX_UNIQUE} numbered variants all exist"
        raise SinkError(msg, hint="clear the output folder or put {n} or {hash8} in the name")
    return None


def _numbered(target: Path) -> Iterator[Path]:
    return (target.with_name(f"{target.stem}-{i}{target.suffix}") for i in range(1, MAX_UNIQUE))


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a regular file with exactly ``data`` in it."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


def _claim(staging: Path, candidate: Path) -> bool:
    """Give ``staging``'s content the name ``candidate`` unless that name exists."""
    try:
        os.link(staging, candidate)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARDLINKS:
            raise
    # A file system without hard links: reserve the name, then rename the data onto it.
    try:
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    os.close(fd)
    os.replace(staging, candidate)
    return True


class SidecarSink(hotfolder.Sink):
    """Writes ``<output file name>.json`` next to each file the earlier sinks wrote."""

    name = "sidecar"
    summary = "a JSON record of each output: job, source, steps, costs, hashes"

    class Params(hotfolder.Params):
        suffix: str = ".json"
        #: Where to write ``<stem><suffix>`` when no earlier sink wrote a local file.
        path: hotfolder.ConfigPath | None = None
        mode: FileMode = 0o644

        @field_validator("suffix")
        @classmethod
        def _plain_suffix(cls, value: str) -> str:
            if not value or sanitize_component("x" + value) != "x" + value:
                msg = f"suffix {value!r} must be a plain file-name ending like '.json'"
                raise ValueError(msg)
            return value

    params: Params

    def write(
        self, context: hotfolder.SinkContext, artifact: hotfolder.Artifact
    ) -> list[hotfolder.Output]:
        files = [
            Path(o.location)
            for o in context.written
            if o.sink != self.name and "://" not in o.location and Path(o.location).is_file()
        ]
        suffix = self.params.suffix
        if files:
            return [
                self._write(file.with_name(file.name + suffix), context, artifact, file)
                for file in files
            ]
        if self.params.path is None:
            msg = f"sidecar for {context.job.display}: no earlier output is a local file"
            hint = "put the sidecar after a folder sink in outputs, or give it a path"
            raise SinkError(msg, hint=hint)
        name = sanitize_component(artifact.stem) + suffix
        return [self._write(join_inside(self.params.path, name), context, artifact, None)]

    def _write(
        self,
        target: Path,
        context: hotfolder.SinkContext,
        artifact: hotfolder.Artifact,
        file: Path | None,
    ) -> hotfolder.Output:
        record = sidecar_record(context, artifact, file)
        data = (json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n").encode()
        try:
            atomic_write(target, data, mode=self.params.mode)
        except OSError as exc:
            raise write_failure(exc, f"cannot write the sidecar {target}") from exc
        return hotfolder.Output(
            sink=self.name, location=str(target), bytes=len(data), media_type="application/json"
        )


@hotfolder.hookimpl
def hotfolder_register_sinks(register: Register) -> None:
    register(FolderSink)
    register(SidecarSink)
