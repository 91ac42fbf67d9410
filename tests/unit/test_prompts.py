"""Companion prompt files: naming, reading (UTF-8, capped, trimmed, refused with the file's
name), and ``{prompt}`` in a Venice edit's prompt, filled from the file beside the image
through the real engine against the sandbox."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path, PurePosixPath

import pytest
from PIL import Image

from hotfolder.engine import Engine
from hotfolder.errors import InputError, UnsafeInputError
from hotfolder.job import Job
from hotfolder.prompts import (
    PROMPT_MAX_BYTES,
    companion,
    is_prompt_file,
    prompt_digest,
    prompt_file_of,
    read_prompt,
    render_prompt,
)
from hotfolder.testing import make_runtime, run_chain, sandbox

# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "prompt"),
    [
        ("shoe.jpg", "shoe.prompt.txt"),
        ("sub/shoe.PNG", "sub/shoe.prompt.txt"),
        ("my.shoe.heic", "my.shoe.prompt.txt"),
        ("noext", "noext.prompt.txt"),
    ],
)
def test_the_prompt_file_of_an_image_is_beside_it(image: str, prompt: str) -> None:
    assert companion(PurePosixPath(image)) == PurePosixPath(prompt)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("shoe.prompt.txt", True),
        ("sub/shoe.prompt.txt", True),
        (".prompt.txt", False),
        ("shoe.txt", False),
        ("shoe.prompt.txt.part", False),
        ("shoe.PROMPT.TXT", False),
    ],
)
def test_prompt_files_are_told_by_their_name(name: str, expected: bool) -> None:
    assert is_prompt_file(name) is expected
    assert is_prompt_file(PurePosixPath(name)) is expected


def test_only_a_local_image_can_have_a_prompt_file() -> None:
    assert prompt_file_of("/in/shoe.jpg") == Path("/in/shoe.prompt.txt")
    assert prompt_file_of("https://example.com/shoe.jpg") is None
    assert prompt_file_of("data:image/png;base64,AAAA") is None
    assert prompt_file_of("/in/shoot.job.toml") is None


def test_render_replaces_every_placeholder() -> None:
    assert render_prompt("{prompt}, then {prompt}", "red") == "red, then red"
    assert render_prompt("no field", "red") == "no field"


# --- reading ---------------------------------------------------------------------------------


def test_a_prompt_is_read_as_utf8_trimmed_without_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "shoe.prompt.txt"
    path.write_bytes("\ufeff  a red shoe on white, \u00e9clat\n\n".encode())
    assert read_prompt(path) == "a red shoe on white, \u00e9clat"


def test_a_prompt_over_the_cap_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "big.prompt.txt"
    path.write_bytes(b"a" * (PROMPT_MAX_BYTES + 1))
    with pytest.raises(InputError) as info:
        read_prompt(path)
    assert str(path) in info.value.message and "over 131,072 bytes" in info.value.message
    path.write_bytes(b"a" * PROMPT_MAX_BYTES)  # exactly the cap is fine
    assert len(read_prompt(path)) == PROMPT_MAX_BYTES


def test_a_prompt_that_is_not_utf8_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "latin.prompt.txt"
    path.write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(InputError) as info:
        read_prompt(path)
    assert info.value.message == (
        f"the prompt file {path} is not UTF-8 text (byte 0xe9 at offset 3)"
    )
    assert "UTF-8" in (info.value.hint or "")


def test_an_empty_prompt_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.prompt.txt"
    path.write_text(" \n\t\n")
    with pytest.raises(InputError, match="is empty"):
        read_prompt(path)


def test_a_missing_or_linked_prompt_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_prompt(tmp_path / "none.prompt.txt")
    (tmp_path / "real.txt").write_text("hello")
    os.symlink(tmp_path / "real.txt", tmp_path / "link.prompt.txt")
    with pytest.raises(UnsafeInputError, match="symbolic link"):
        read_prompt(tmp_path / "link.prompt.txt")
    os.mkfifo(tmp_path / "fifo.prompt.txt")
    with pytest.raises(UnsafeInputError, match="refused"):
        read_prompt(tmp_path / "fifo.prompt.txt")


def test_the_digest_tells_prompts_apart(tmp_path: Path) -> None:
    image = tmp_path / "shoe.jpg"
    assert prompt_digest(image) is None
    companion(image).write_text("red")
    red = prompt_digest(image)
    companion(image).write_text("blue")
    assert red is not None and prompt_digest(image) not in (None, red)


# --- {prompt} in a Venice edit, through the engine and the sandbox ---------------------------


def _image(folder: Path, name: str = "shoe.png") -> Path:
    path = folder / name
    Image.new("RGB", (256, 256), (200, 40, 40)).save(path)
    return path


EDIT = {"op": "venice.edit", "prompt": "studio photo: {prompt}", "enhance_prompt": True}
OUTPUTS = [{"sink": "folder", "path": "out"}, {"sink": "sidecar"}]


def test_the_prompt_file_fills_the_edit_and_the_record_shows_it_as_sent(tmp_path: Path) -> None:
    image = _image(tmp_path)
    companion(image).write_text("a red shoe on white\n")
    with sandbox() as sb:
        result = run_chain(image, [EDIT], outputs=OUTPUTS, sandbox=sb)
        stats = sb.stats()
    (step,) = result.steps
    assert step.params["prompt"] == "studio photo: a red shoe on white"
    assert step.notes["prompt_file"] == "shoe.prompt.txt"
    # the sandbox echoes the prompt it received (its stand-in for prompt enhancement)
    assert step.notes["enhanced_prompt"].startswith("studio photo: a red shoe on white, ")
    assert stats["paid_total"] == 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "does not exist"), (b"\xff\xfe\x00", "not UTF-8"), (b"  \n", "is empty")],
)
def test_without_a_good_prompt_file_nothing_is_sent(
    tmp_path: Path, content: bytes | None, reason: str
) -> None:
    image = _image(tmp_path)
    if content is not None:
        companion(image).write_bytes(content)
    with sandbox() as sb:
        with pytest.raises(InputError) as info:
            run_chain(image, [EDIT], outputs=OUTPUTS, sandbox=sb)
        stats = sb.stats()
    assert reason in info.value.message and "shoe.prompt.txt" in info.value.message
    assert info.value.step == "0:venice.edit"
    assert stats["requests_total"] == 0


def test_a_saved_edit_is_reused_although_its_record_shows_the_sent_prompt(tmp_path: Path) -> None:
    image = _image(tmp_path)
    companion(image).write_text("a red shoe")
    config = {
        "chains": {"edit": {"steps": [EDIT, {"op": "resize", "width": 64}], "outputs": OUTPUTS[:1]}}
    }
    checkpoints = tmp_path / "checkpoints"

    async def twice(sb) -> list:
        results = []
        for _ in range(2):
            runtime = make_runtime(config, base_dir=tmp_path, sandbox=sb)
            job = Job(source=str(image), chain="edit", checkpoint_dir=checkpoints)
            try:
                results.append(await Engine(runtime).run(job))
            finally:
                await runtime.aclose()
        return results

    with sandbox() as sb:
        first, second = asyncio.run(twice(sb))
        stats = sb.stats()
    assert stats["paid_total"] == 1  # the second run paid nothing
    assert second.steps[0].from_checkpoint
    sent = [r.steps[0].params["prompt"] for r in (first, second)]
    assert sent == ["studio photo: a red shoe"] * 2
