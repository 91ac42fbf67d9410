"""Benchmark 4: bytes on the wire per image. hotfolder's Venice client uploads multipart; the
peer SDKs send JSON with the image in base64. Both are measured as the request body the
sandbox received (its ``bytes_received``), for the same ``/image/edit`` request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from hotfolder.artifact import Artifact
from hotfolder.venice import EditRequest
from hotfolder.venice.client import VeniceClient
from hotfolder.venice.settings import VeniceSection
from hotfolder_sandbox import SandboxHandle
from tests.bench.common import (
    Bench,
    Goal,
    Section,
    Spread,
    Table,
    alternate,
    noise_png,
    sandbox,
    venice_photos,
)
from tests.bench.peer_loop import MODEL, OUTPUT_FORMAT, PROMPT, json_body

NUMBER, TITLE = 4, "Bytes on the wire"
ENDPOINT = "/image/edit"
KEY = "bench-key"


class Uploads:
    """Sends one image both ways to one sandbox and reads what it received."""

    def __init__(self, handle: SandboxHandle) -> None:
        self.handle = handle
        self.received = 0

    def _delta(self) -> int:
        total = int(self.handle.stats()["bytes_received"].get(ENDPOINT, 0))
        delta, self.received = total - self.received, total
        return delta

    def multipart(self, path: Path) -> int:
        async def send() -> None:
            settings = VeniceSection(requests_per_minute=6000)
            base_url = self.handle.base_url
            async with VeniceClient(
                base_url=base_url, api_key=KEY, settings=settings, persist=False
            ) as client:
                artifact = Artifact.from_bytes(path.read_bytes(), name=path.name)
                request = EditRequest(prompt=PROMPT, model=MODEL, output_format=OUTPUT_FORMAT)
                await client.edit(artifact, request)

        asyncio.run(send())
        return self._delta()

    def json(self, path: Path) -> int:
        base_url = self.handle.base_url
        response = httpx.post(
            f"{base_url}{ENDPOINT}",
            content=json_body(path.read_bytes()),
            headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
            timeout=120,
        )
        response.raise_for_status()
        return self._delta()


def run(bench: Bench) -> Section:
    images = venice_photos()
    large = noise_png(bench.work / "large.png", bench.size(20_000_000, 2_000_000))
    table = Table(["image", "file bytes", "multipart (hotfolder)", "JSON + base64 (peers)",
                   "multipart ÷ JSON"])  # fmt: skip
    totals = {"multipart": 0, "json": 0}
    ratios: list[float] = []
    with sandbox(requests_per_minute=6000) as handle:
        uploads = Uploads(handle)
        for path in [*images, large]:
            results = alternate(
                bench.reps,
                [
                    (f"{path.name}, multipart", lambda p=path: uploads.multipart(p)),
                    (f"{path.name}, JSON", lambda p=path: uploads.json(p)),
                ],
            )
            multipart = Spread.of(results[f"{path.name}, multipart"])
            as_json = Spread.of(results[f"{path.name}, JSON"])
            if path != large:
                totals["multipart"] += int(multipart.median)
                totals["json"] += int(as_json.median)
                ratios.append(multipart.median / as_json.median)
            table.rows.append([
                f"`{path.name}`" if path != large else f"noise PNG ({path.stat().st_size:,} B)",
                f"{path.stat().st_size:,}",
                multipart.fmt(0),
                as_json.fmt(0),
                f"{multipart.median / as_json.median:.3f}",
            ])  # fmt: skip
    overall = totals["multipart"] / totals["json"]
    table.rows.insert(len(images), [
        f"**all {len(images)} photos**", "", f"{totals['multipart']:,}", f"{totals['json']:,}",
        f"**{overall:.3f}**",
    ])  # fmt: skip
    return Section(
        NUMBER,
        TITLE,
        setup=(
            "Each Venice-ready corpus photo, and a large noise PNG, sent as the same "
            "`/image/edit` request (model, prompt, `output_format`, the image) twice: by "
            "hotfolder's `VeniceClient` (multipart, the bytes `venice.edit` would upload) and as "
            "JSON with the image in base64 (`tests/bench/peer_loop.py`'s body). The figures are "
            "the request body sizes the sandbox received. They do not vary between repetitions "
            "(multipart boundaries have a fixed length)."
        ),
        tables=[table],
        goals=[Goal("multipart ÷ JSON ≤ 0.76 (all photos)", f"{overall:.3f}", overall <= 0.76)],
        notes=[
            f"Per photo the ratio ranges {min(ratios):.3f}-{max(ratios):.3f}: base64 costs 4/3, "
            "multipart a few hundred bytes of part headers, so the ratio tends to 0.75 as "
            "images grow.",
        ],
        headline=f"uploads {overall:.2f}x the bytes of JSON + base64",
    )
