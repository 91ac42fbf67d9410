"""The Venice operations' checks before any paid request, run against a recording transport:
a problem found locally must never reach the API."""

from __future__ import annotations

import asyncio
import copy
import email.parser
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hotfolder.artifact import Artifact
from hotfolder.components import StepContext
from hotfolder.config import validate_config
from hotfolder.errors import ConfigError, InputError
from hotfolder.job import Job, StepRecord
from hotfolder.plugins import build_registry, make_plugin_manager
from hotfolder.runtime import Runtime
from hotfolder.venice import SERVICE, VeniceClient, VeniceSection
from hotfolder_sandbox.catalog import load_catalog

KEY = "sk-venice-preflight-key"
BASE = "https://api.venice.test/api/v1"
REGISTRY = build_registry(make_plugin_manager(load_entrypoints=False))


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def picture(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    image = Image.linear_gradient("L").resize(size).convert(mode)
    return image


class Venice:
    """A recording stand-in: serves a model list and answers image requests with a PNG marked
    simulated, as the sandbox does (``X-Simulated: true`` and the metadata mark)."""

    def __init__(self, models: dict[str, Any] | None = None, *, models_status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.models = models
        self.models_status = models_status
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if request.url.path.endswith("/models"):
            kind = request.url.params["type"]
            if self.models_status != 200:
                return httpx.Response(self.models_status, json={"error": "down"})
            listing = self.models.get(kind) if self.models else load_catalog().listing(kind)
            return httpx.Response(200, json=listing)
        info = PngInfo()
        info.add_text("hotfolder-sandbox", "simulated")
        body = encode(picture((512, 512)), pnginfo=info)
        headers = {
            "content-type": "image/png",
            "cf-ray": f"ray-{len(self.requests)}",
            "x-venice-balance-usd": "9.5",
            "x-simulated": "true",
        }
        return httpx.Response(200, content=body, headers=headers)

    @property
    def image_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if "/image/" in r.url.path]


def fields(request: httpx.Request) -> dict[str, Any]:
    if request.headers["content-type"] == "application/json":
        return json.loads(request.content)
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    out: dict[str, Any] = {}
    for part in email.parser.BytesParser().parsebytes(head + request.content).get_payload():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        value = data if part.get_param("filename", header="content-disposition") else data.decode()
        out[name] = (
            [*out[name], value]
            if name in out and isinstance(out[name], list)
            else ([out[name], value] if name in out else value)
        )
    return out


def make_runtime(tmp_path: Path, venice: Venice, **venice_settings: Any) -> Runtime:
    config = validate_config(
        {"venice": {"cache_dir": str(tmp_path / "cache"), **venice_settings}}, REGISTRY
    )
    runtime = Runtime(config, make_plugin_manager(load_entrypoints=False), REGISTRY)
    settings = VeniceSection(cache_dir=tmp_path / "cache", max_attempts=1, **venice_settings)
    client = VeniceClient(base_url=BASE, api_key=KEY, settings=settings, transport=venice.transport)
    runtime.set_service(SERVICE, client)
    return runtime


def run_op(
    runtime: Runtime,
    op: str,
    params: dict[str, Any],
    artifact: Artifact,
    *,
    base_dir: Path | None = None,
) -> tuple[Artifact, StepRecord]:
    cls = REGISTRY.operation(op)
    operation = cls(cls.Params.model_validate(params))
    record = StepRecord(index=0, op=op, params=params, paid=True)
    job = Job(source=artifact.name, chain="test", base_dir=base_dir)
    context = StepContext(job=job, index=0, runtime=runtime, record=record)

    async def go() -> Artifact:
        try:
            return await operation.run(context, artifact)
        finally:
            await runtime.aclose()

    return asyncio.run(go()), record


def artifact_of(
    image: Image.Image, name: str = "photo.png", fmt: str = "PNG", **info: Any
) -> Artifact:
    found = Artifact.from_bytes(encode(image, fmt), name=name)
    found.info.update(info)
    return found


# --- pixels and bytes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "op", ["venice.edit", "venice.upscale", "venice.background-remove", "venice.multi-edit"]
)
def test_too_small_without_fit_fails_before_any_request(tmp_path, op):
    venice = Venice()
    params = {"prompt": "p"} if "edit" in op else {}
    with pytest.raises(InputError, match=r"128x128.*at least 65,536") as caught:
        run_op(make_runtime(tmp_path, venice), op, params, artifact_of(picture((128, 128))))
    assert "fit = true" in caught.value.hint
    assert venice.requests == []


def test_fit_scales_a_128px_input_into_range(tmp_path):
    venice = Venice()
    result, _ = run_op(
        make_runtime(tmp_path, venice),
        "venice.edit",
        {"prompt": "p", "fit": True},
        artifact_of(picture((128, 128))),
    )
    (request,) = venice.image_requests
    sent = Image.open(io.BytesIO(fields(request)["image"]))
    assert sent.width * sent.height >= 65_536
    assert sent.width == sent.height  # the shape is kept
    assert result.image.size == (512, 512)


def test_a_4x_upscale_past_16_megapixels_is_sent_as_4x_at_the_4x_price(tmp_path):
    venice = Venice()
    _, record = run_op(
        make_runtime(tmp_path, venice),
        "venice.upscale",
        {"scale": 4},
        artifact_of(picture((1500, 1000))),
    )
    (request,) = venice.image_requests
    assert fields(request)["scale"] == "4"  # 24 MP at 4x: Venice lowers the factor itself
    assert record.cost_usd == pytest.approx(0.08)  # the upscaler's 4x price
    assert record.notes["scale"] == 4 and record.notes["input_size"] == "1500x1000"


@pytest.mark.parametrize("scale", [1, 2.5, 3, 8, True, "4"])
def test_an_upscale_factor_other_than_2_or_4_is_refused_naming_both(scale):
    raw = {
        "chains": {
            "up": {
                "steps": [{"op": "venice.upscale", "scale": scale}],
                "outputs": [{"sink": "folder", "path": "out"}],
            }
        },
    }
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, REGISTRY)
    assert "chains.up.steps[0].scale: must be 2 or 4" in str(caught.value)


def test_upscale_of_an_image_too_large_for_2x_fails_clearly_or_fits(tmp_path):
    big = artifact_of(picture((2500, 2000)), fmt="JPEG", name="big.jpg")
    venice = Venice()
    with pytest.raises(InputError, match="16,777,216") as caught:
        run_op(make_runtime(tmp_path, venice), "venice.upscale", {}, big)
    assert "fit = true" in caught.value.hint
    assert venice.requests == []

    _, record = run_op(make_runtime(tmp_path, venice), "venice.upscale", {"fit": True}, big)
    (request,) = venice.image_requests
    sent = Image.open(io.BytesIO(fields(request)["image"]))
    assert sent.width * sent.height * 4 <= 16_777_216
    assert "scale" not in fields(request)  # 2 is the API's default: left out
    assert record.notes["scale"] == 2


def test_formats_venice_may_not_take_are_reencoded(tmp_path):
    venice = Venice()
    run_op(
        make_runtime(tmp_path, venice),
        "venice.background-remove",
        {},
        artifact_of(picture((300, 300)), name="scan.tif", fmt="TIFF"),
    )
    sent = Image.open(io.BytesIO(fields(venice.image_requests[0])["image"]))
    assert sent.format in ("PNG", "JPEG")


# --- the model's constraints ----------------------------------------------------------------


def test_a_prompt_over_the_models_limit_never_reaches_the_api(tmp_path):
    venice = Venice()
    with pytest.raises(ConfigError, match=r"1501 characters.*at most 1500"):
        run_op(
            make_runtime(tmp_path, venice),
            "venice.edit",
            {"prompt": "x" * 1501},
            artifact_of(picture((300, 300))),
        )
    assert venice.image_requests == []


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"model": "firered-image-edit", "aspect_ratio": "21:9"}, "aspect_ratio '21:9'"),
        ({"model": "grok-imagine-edit", "resolution": "4K"}, "resolution '4K'"),
        ({"model": "firered-image-edit", "quality": "high"}, "quality 'high'"),
        ({"model": "gpt-image-2-edit", "resolution": "2K", "quality": "ultra"}, "Input should be"),
        ({"model": "FireRed-Image-Edit"}, "no inpaint model 'FireRed-Image-Edit'"),
    ],
)
def test_choices_outside_the_models_constraints_never_reach_the_api(tmp_path, params, match):
    listing = copy.deepcopy(load_catalog().listing("inpaint"))  # the catalog is shared
    for model in listing["data"]:
        if model["id"] == "firered-image-edit":
            model["model_spec"]["constraints"]["aspectRatios"] = ["auto", "1:1", "16:9"]
    venice = Venice({"inpaint": listing})
    with pytest.raises((ConfigError, ValueError), match=match):
        run_op(
            make_runtime(tmp_path, venice),
            "venice.edit",
            {"prompt": "p", **params},
            artifact_of(picture((300, 300))),
        )
    assert venice.image_requests == []


def test_without_a_model_list_the_specs_limits_apply(tmp_path):
    venice = Venice(models_status=500)
    run_op(
        make_runtime(tmp_path, venice),
        "venice.edit",
        {"prompt": "x" * 2000},
        artifact_of(picture((300, 300))),
    )
    assert len(venice.image_requests) == 1  # 2000 > the list's 1500 but within the spec's 32768
    with pytest.raises(ValueError, match="32768"):
        REGISTRY.operation("venice.edit").Params.model_validate({"prompt": "x" * 32769})


def test_multi_edit_counts_inputs_against_max_input_images(tmp_path):
    for i in range(3):
        (tmp_path / f"layer{i}.png").write_bytes(encode(picture((300, 300))))
    venice = Venice()
    with pytest.raises(ConfigError, match=r"4 input images.*at most 3"):
        run_op(
            make_runtime(tmp_path, venice),
            "venice.multi-edit",
            {"prompt": "p", "with": ["layer0.png", "layer1.png", "layer2.png"]},
            artifact_of(picture((300, 300))),
            base_dir=tmp_path,
        )
    assert venice.image_requests == []

    _, record = run_op(
        make_runtime(tmp_path, venice),
        "venice.multi-edit",
        {"prompt": "p", "with": ["layer0.png", "layer1.png"]},
        artifact_of(picture((300, 300))),
        base_dir=tmp_path,
    )
    sent = fields(venice.image_requests[0])
    assert len(sent["images"]) == 3 and sent["modelId"] == "firered-image-edit"
    assert record.notes["images"] == 3


def test_legacy_upscale_fields_name_the_current_ones():
    raw = {
        "chains": {
            "up": {
                "steps": [{"op": "venice.upscale", "enhance": True, "replication": 0.3}],
                "outputs": [{"sink": "folder", "path": "out"}],
            }
        },
    }
    with pytest.raises(ConfigError) as caught:
        validate_config(raw, REGISTRY)
    text = str(caught.value)
    assert "chains.up.steps[0]" in text
    assert (
        "enhance, replication" in text
        and "scale (2 or 4)" in text
        and "creativity (0 to 0.02)" in text
    )


# --- routing, records and results -----------------------------------------------------------


def test_edit_with_quality_goes_to_multi_edit_with_one_image(tmp_path):
    venice = Venice()
    run_op(
        make_runtime(tmp_path, venice),
        "venice.edit",
        {"prompt": "p", "model": "gpt-image-2-edit", "quality": "low", "resolution": "2K"},
        artifact_of(picture((300, 300))),
    )
    (request,) = venice.image_requests
    assert request.url.path.endswith("/image/multi-edit")
    sent = fields(request)
    assert (sent["modelId"], sent["quality"], sent["resolution"]) == (
        "gpt-image-2-edit",
        "low",
        "2K",
    )
    assert not isinstance(sent["images"], list)  # one file part
    assert "model" not in sent


def test_the_record_and_the_result_say_what_happened(tmp_path):
    venice = Venice()
    source = artifact_of(picture((300, 300)), origin="inbox")
    result, record = run_op(
        make_runtime(tmp_path, venice),
        "venice.edit",
        {"prompt": "p", "model": "gpt-image-2-edit", "resolution": "2K"},
        source,
    )
    assert record.request_ids == ["ray-2"]  # 1 was the model list
    assert record.cost_usd == pytest.approx(0.52)  # gpt-image-2-edit 2K at the default quality
    assert record.notes["model"] == "gpt-image-2-edit"
    assert record.notes["balance_usd"] == 9.5
    assert result.info == {"origin": "inbox", "simulated": True}
    assert (result.format, result.image.size, result.name) == ("PNG", (512, 512), "photo.png")


def test_an_unchanged_url_input_is_passed_by_url_where_the_endpoint_takes_one(tmp_path):
    data = encode(picture((300, 300)))
    url = "https://93.184.215.14/cat.png"  # public, and an address: no DNS needed
    venice = Venice()
    source = Artifact.from_bytes(data, name="cat.png")
    source.info.update(source_url=url, source_sha256=hashlib.sha256(data).hexdigest())
    result, record = run_op(make_runtime(tmp_path, venice), "venice.background-remove", {}, source)
    assert json.loads(venice.image_requests[0].content) == {"image_url": url}
    assert "source_url" not in result.info  # the result is not what the URL holds
    assert record.notes["input_sent_as"] == "url"

    run_op(make_runtime(tmp_path, venice), "venice.edit", {"prompt": "p"}, source)
    assert json.loads(venice.image_requests[1].content)["image"] == url

    run_op(make_runtime(tmp_path, venice), "venice.upscale", {}, source)
    assert fields(venice.image_requests[2])["image"] == data  # upscale takes no URL: bytes

    changed = source.with_image(source.image.rotate(90))
    run_op(make_runtime(tmp_path, venice), "venice.edit", {"prompt": "p"}, changed)
    assert isinstance(fields(venice.image_requests[3])["image"], bytes)


def test_with_paths_in_a_config_are_taken_from_its_folder(tmp_path):
    raw = {
        "chains": {
            "m": {
                "steps": [
                    {
                        "op": "venice.multi-edit",
                        "prompt": "p",
                        "with": [
                            "assets/../assets/bg.png",
                            "https://x.example/a.png",
                            "/abs/b.png",
                        ],
                    }
                ],
                "outputs": [{"sink": "folder", "path": "out"}],
            }
        }
    }
    config = validate_config(raw, REGISTRY, path=tmp_path / "conf" / "hotfolder.toml")
    params = config.chains["m"].steps[0].params
    assert params.with_ == [
        str(tmp_path / "conf" / "assets" / "bg.png"),
        "https://x.example/a.png",
        "/abs/b.png",
    ]


def test_an_exif_turned_jpeg_is_uploaded_upright():
    import io

    from PIL import Image, ImageChops, ImageStat

    from hotfolder.artifact import Artifact
    from hotfolder.venice import preflight
    from tests.helpers.corpus import PHOTOS

    turned = Artifact.from_bytes((PHOTOS / "hopper_orientation_6.jpg").read_bytes(), name="t.jpg")
    upload = preflight.upload_input(turned)
    with Image.open(io.BytesIO(upload.data)) as sent, Image.open(PHOTOS / "hopper.jpg") as upright:
        assert sent.getexif().get(0x0112, 1) == 1
        diff = ImageStat.Stat(ImageChops.difference(sent.convert("RGB"), upright.convert("RGB")))
        assert sum(diff.mean) / 3 < 20  # the pixels themselves are upright, not only the tag

    plain = Artifact.from_bytes((PHOTOS / "hopper.jpg").read_bytes(), name="h.jpg")
    assert preflight.upload_input(plain).data == plain.data  # sent as it is
