"""Baseline (a) of the Venice benchmarks: a sequential loop posting JSON with the image in
base64, one file after another, as the peer SDKs are used (one pooled ``httpx.Client``).

``python -m tests.bench.peer_loop BASE_URL API_KEY SOURCE_DIR OUTPUT_DIR``
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import httpx

#: What every contender asks of ``/image/edit``.
MODEL = "firered-image-edit"
PROMPT = "make it warmer"
OUTPUT_FORMAT = "jpeg"


def json_body(data: bytes) -> bytes:
    """The JSON body a peer SDK sends for one edit: the image as a base64 string."""
    payload = {
        "model": MODEL,
        "prompt": PROMPT,
        "output_format": OUTPUT_FORMAT,
        "image": base64.b64encode(data).decode("ascii"),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def main(argv: list[str]) -> int:
    base_url, api_key, source, output = argv
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    headers = {"authorization": f"Bearer {api_key}", "content-type": "application/json"}
    with httpx.Client(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=120) as client:
        for path in sorted(Path(source).iterdir()):
            response = client.post("image/edit", content=json_body(path.read_bytes()))
            response.raise_for_status()
            (out / f"{path.stem}.jpg").write_bytes(response.content)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
