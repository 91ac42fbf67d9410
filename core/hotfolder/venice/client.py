"""The Venice image client: one connection pool, one rate limiter and breaker per API key.

::

    client = VeniceClient(base_url="https://api.venice.ai/api/v1", api_key=key)
    result = await client.edit(artifact, EditRequest(prompt="..."))
    result.data, result.format, result.image, result.headers.request_id
    result.cost_usd, result.notes

The four image methods own Venice's policy (:mod:`.requests`): each looks up the model, checks
the input and the request against Venice's limits and the model's constraints
(:mod:`.preflight`), prices the call (:mod:`.cost`), sends a URL input as its URL where Venice
can fetch it (and once more as bytes if Venice cannot), else uploads the bytes, and says on
the result what it cost and what it noted (the model, the scale asked, how the input went).

Every image call goes through the same path: the daily budget is reserved, the request waits
for the breaker and a rate slot, is sent, retried on 429, 5xx, timeouts and resets, and its
200 body is checked to decode as the format its Content-Type names.

A 401/403, a 402 or the spent daily budget *pauses* the client (:mod:`.pausing`): the call
raises AuthError, BalanceError or BudgetExceeded, and so does every later call it holds back,
at once and without sending, until :meth:`VeniceClient.probe` finds that work can go on. The
client never waits for money inside a call. It is :class:`hotfolder.pauses.Pausable`: the
daemon and ``hotfolder process`` watch and probe it.

Time on the wire and time queued for a slot are kept apart: the log line of a result says
both, and each wait is reported through :mod:`hotfolder.waits`.

A server that answers with a simulated image, not a real one, says so with the response header
``X-Simulated: true`` (the local sandbox, :mod:`hotfolder_sandbox`, does on every image);
:attr:`ImageResult.simulated` reports it. Nothing else about the server is special-cased.

The model list, the daily spend ledger and the recent failed requests (the circuit breaker's
memory, so that a restart during an outage does not walk into the key lockout) are kept in the
cache folder; ``persist=False`` keeps them in memory instead, for a server that lives only as
long as the run, such as a sandbox.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

import httpx
from loguru import logger
from PIL import Image, UnidentifiedImageError

from hotfolder import imaging
from hotfolder.artifact import Artifact
from hotfolder.errors import (
    AuthError,
    BalanceError,
    BudgetExceeded,
    HotfolderError,
    OperationError,
    Rejected,
    Unavailable,
)
from hotfolder.pauses import Pause
from hotfolder.redact import register_secret, scrub
from hotfolder.venice import preflight
from hotfolder.venice.catalog import UPSCALE_MODEL, Catalog
from hotfolder.venice.cost import SpendLedger, api_cache_file, request_usd
from hotfolder.venice.errors import error_from_response, network_error
from hotfolder.venice.headers import RateLimitState, ResultHeaders, as_bool, request_id
from hotfolder.venice.limiter import CircuitBreaker, RateLimiter, Throttle
from hotfolder.venice.pausing import SERVICE_NAME, VenicePause
from hotfolder.venice.requests import (
    BackgroundRemoveRequest,
    EditRequest,
    ImageRequest,
    MultiEditRequest,
    UpscaleRequest,
)
from hotfolder.venice.retry import retrying
from hotfolder.venice.settings import VeniceSection
from hotfolder.venice.sharing import FailureGate, SendLimiter, SharedAccount
from hotfolder.venice.wire import (
    ENDPOINTS,
    Endpoint,
    EndpointName,
    ImageInput,
    build_body,
    url_refused,
)
from hotfolder.waits import waiting

__all__ = ["ImageInput", "ImageResult", "VeniceClient"]

#: Response Content-Type -> Pillow format.
_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/jpg": "JPEG", "image/webp": "WEBP"}
#: A server answering with a simulated image sets this response header to ``true``.
SIMULATED_HEADER = "x-simulated"

_deprecation_warned: set[str] = set()


@dataclass(frozen=True)
class ImageResult:
    """A checked 200 answer: the bytes, their format, the decoded pixels and the headers."""

    data: bytes
    format: str
    media_type: str
    image: Image.Image
    headers: ResultHeaders
    #: True when the response said ``X-Simulated: true`` (the sandbox's do).
    simulated: bool
    endpoint: str
    #: Time on the wire: from sending the request to reading the answer, summed over tries.
    seconds: float
    #: Time queued for a connection, the breaker or a rate slot, summed over tries.
    waited_seconds: float = 0.0
    #: What the call was priced at and booked against the daily budget (None: not known).
    cost_usd: float | None = None
    #: What the client noted for the step's record: ``model``, ``images``, ``scale`` (asked),
    #: ``input_size``, ``input_sent_as`` (``url``, ``bytes``, or bytes after a refused URL).
    notes: Mapping[str, Any] = field(default_factory=dict)


class VeniceClient:
    """Talks to one Venice API root with one key.

    ``base_url`` is the API root (``https://api.venice.ai/api/v1``, or a sandbox's
    ``http://127.0.0.1:PORT/api/v1``); ``settings`` supplies the limits, timeouts, retry and
    pause policy, cache folder and daily budget (its ``api_key`` and ``base_url`` are not
    used here); ``transport`` replaces the network (``httpx.MockTransport`` in tests);
    ``sleep`` replaces ``asyncio.sleep`` for the backoff and rate waits; ``clock`` replaces
    ``time.time`` for the pause and the budget's day. ``persist=False`` keeps the model list
    and the spend ledger in memory only (a sandbox's, which gets a new port each run);
    otherwise they are kept in the cache folder. Without ``api_key`` the client starts
    paused with ``missing_key`` (the error saying where the key was looked for). ``shared``
    keeps the rate limit, breaker, pause and spend where every process of a fleet sees them
    (:mod:`.sharing`).
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        settings: VeniceSection | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        persist: bool = True,
        missing_key: AuthError | None = None,
        shared: SharedAccount | None = None,
    ) -> None:
        self.settings = settings or VeniceSection()
        self.base_url = base_url.rstrip("/")
        if api_key:
            register_secret(api_key)  # scrubbed from every log line and error message
        self._has_key = bool(api_key)
        self._shared = shared is not None
        self._sleep = sleep
        s = self.settings
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers={"authorization": f"Bearer {api_key}", "accept": "*/*"},
            timeout=httpx.Timeout(s.timeout_seconds, connect=s.connect_timeout_seconds, pool=None),
            limits=httpx.Limits(
                max_connections=s.max_connections, max_keepalive_connections=s.max_connections
            ),
            transport=transport,
            follow_redirects=False,
            trust_env=transport is None,
        )
        cache_dir = s.effective_cache_dir() if persist else None
        self.catalog = Catalog(
            self.list_models,
            cache_dir=cache_dir,
            base_url=self.base_url,
            ttl_seconds=s.models_ttl_seconds,
        )
        self.ledger = SpendLedger(
            cache_dir,
            base_url=self.base_url,
            max_usd_per_day=s.max_usd_per_day,
            clock=clock,
            store=shared.spend_store() if shared else None,
        )
        self.pausing = VenicePause(
            balance=lambda: self.balance(probe=True),
            budget_fits=self.ledger.fits,
            clock=clock,
            store=shared.pause_store() if shared else None,
        )
        if not api_key:
            missing_key = missing_key or AuthError(
                "no Venice API key was given", hint="export VENICE_API_KEY=..."
            )
            self.pausing.enter(missing_key, lifts_by_probe=False)
        limiter: SendLimiter
        breaker: FailureGate
        if shared is not None:
            limiter = shared.rate_limiter(s.requests_per_minute)
            breaker = shared.circuit_breaker(s.breaker_failures, s.breaker_window_seconds)
        else:
            limiter = RateLimiter(s.requests_per_minute, sleep=sleep)
            breaker = CircuitBreaker(
                s.breaker_failures,
                s.breaker_window_seconds,
                memory=api_cache_file(cache_dir, "failures", self.base_url),
            )
        self.throttle = Throttle(
            limiter,
            breaker,
            max_in_flight=s.max_connections,
            gate=lambda image: self.pausing.check(image=image),
        )

    @classmethod
    def from_settings(
        cls,
        settings: VeniceSection,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        shared: SharedAccount | None = None,
    ) -> VeniceClient:
        """A client for ``[venice]``: the key from its SecretRef and the effective base URL
        (``$VENICE_BASE_URL`` wins). Without a key the client starts paused, with an AuthError
        that says where the key was looked for."""
        try:
            api_key = settings.require_api_key()
        except AuthError as missing:
            return cls(
                base_url=settings.effective_base_url(),
                api_key="",
                settings=settings,
                missing_key=missing,
            )
        return cls(
            base_url=settings.effective_base_url(),
            api_key=api_key,
            settings=settings,
            transport=transport,
            shared=shared,
        )

    def __repr__(self) -> str:
        return f"<VeniceClient {self.base_url} key=***>"

    @property
    def pause(self) -> Pause | None:
        """The pause in force (a refused key, no balance, the budget spent), or None."""
        return self.pausing.current

    def report(self) -> dict[str, Any]:
        """What ``status`` shows of the client: its rate limit now (shared by the fleet when
        the client is part of one)."""
        return {"service": SERVICE_NAME, "rate": self.throttle.limiter.state(),
                "shared": self._shared}  # fmt: skip

    async def probe(self) -> bool:
        """Check whether paused work can go on: one ``GET /billing/balance`` for a key or
        balance pause, none for the budget or without a key. True, and the pause lifted, if
        it can."""
        if not self._has_key:
            return False  # a key comes with a new client (a reloaded config, a restart)
        return await self.pausing.probe()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> VeniceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the four image endpoints ------------------------------------------------------------

    async def edit(self, image: Artifact, request: EditRequest) -> ImageResult:
        """``POST /image/edit``: ``image`` changed as ``request`` says. With ``quality`` set the
        call goes to ``/image/multi-edit`` with this one image (``/image/edit``'s strict
        schema has no quality field)."""
        endpoint: EndpointName = "edit" if request.quality is None else "multi-edit"
        return await self._edit_call(endpoint, [image], request)

    async def multi_edit(
        self, images: Sequence[Artifact], request: MultiEditRequest
    ) -> ImageResult:
        """``POST /image/multi-edit``: the first of ``images`` changed with the others."""
        return await self._edit_call("multi-edit", images, request)

    async def upscale(self, image: Artifact, request: UpscaleRequest) -> ImageResult:
        """``POST /image/upscale``: 2x or 4x, as bytes (the endpoint takes no URL). A 4x that
        would pass 16,777,216 output pixels is sent as asked, at the 4x price: Venice lowers
        the factor itself."""

        def prepare() -> tuple[str, ImageInput]:
            width, height = preflight.check_upscale_input(image)
            return f"{width}x{height}", preflight.upload_input(image)

        input_size, upload = await asyncio.to_thread(prepare)
        listing = await self.catalog.models("upscale")
        model = listing.models.get(UPSCALE_MODEL) or next(iter(listing.models.values()), None)
        notes = {"scale": request.factor, "input_size": input_size}
        return await self._image_call(
            "upscale", request, [image], [upload], request_usd(request, model), notes
        )

    async def background_remove(
        self, image: Artifact, request: BackgroundRemoveRequest
    ) -> ImageResult:
        """``POST /image/background-remove``: a PNG with alpha (a URL input in ``image_url``)."""
        uploads = await self._uploads("background-remove", [image])
        cost = request_usd(request, None)
        return await self._image_call("background-remove", request, [image], uploads, cost, {})

    async def _edit_call(
        self,
        endpoint: EndpointName,
        images: Sequence[Artifact],
        request: EditRequest | MultiEditRequest,
    ) -> ImageResult:
        """Edit or multi-edit: the inputs, then the model's constraints, then the price."""
        uploads = await self._uploads(endpoint, images)
        model = await self.catalog.model(request.model)
        preflight.check_edit(request, model, endpoint=endpoint, images=len(images))
        cost = request_usd(request, model, images=len(images))
        multi = isinstance(request, MultiEditRequest)
        notes: dict[str, Any] = {"images": len(images)} if multi else {}
        result = await self._image_call(endpoint, request, images, uploads, cost, notes)
        model_id = result.headers.model_id or request.model
        return replace(result, notes={"model": model_id, **result.notes})

    async def _uploads(
        self, endpoint: EndpointName, images: Sequence[Artifact]
    ) -> list[ImageInput]:
        """Each input checked and packaged off the event loop: by URL where ``endpoint``
        takes one and Venice can fetch it (:func:`.preflight.sendable_url`), else as bytes."""
        what = ENDPOINTS[endpoint].path
        takes_urls = ENDPOINTS[endpoint].url_field is not None
        send_urls_from = self.settings.send_urls_from

        def prepare() -> list[ImageInput]:
            uploads = []
            for image in images:
                preflight.check_pixels(image, what=what)
                url = preflight.sendable_url(image, send_urls_from) if takes_urls else None
                uploads.append(preflight.upload_input(image, url=url))
            return uploads

        return await asyncio.to_thread(prepare)

    async def _image_call(
        self,
        endpoint: EndpointName,
        request: ImageRequest,
        images: Sequence[Artifact],
        uploads: list[ImageInput],
        cost_usd: float | None,
        notes: dict[str, Any],
    ) -> ImageResult:
        """One paid call through :meth:`call`. When Venice answers that it could not use a URL
        input (:func:`.wire.url_refused`), the same call is sent once more with every input's
        bytes."""
        fields = request.wire_fields(endpoint)
        limits = images[0].limits
        by_url = any(upload.url is not None for upload in uploads)
        try:
            result = await self.call(endpoint, fields, uploads, cost_usd, limits)
        except Rejected as exc:
            if not by_url or not url_refused(exc.status or 0, exc.code, exc.message):
                raise
            logger.warning(
                "Venice could not use the image URL, sending the bytes instead: {}", exc.message
            )
            uploads = await asyncio.to_thread(lambda: [preflight.upload_input(i) for i in images])
            result = await self.call(endpoint, fields, uploads, cost_usd, limits)
            sent_as = "bytes, after Venice could not fetch the URL"
        else:
            sent_as = "url" if by_url else "bytes"
        return replace(result, cost_usd=cost_usd, notes={**notes, "input_sent_as": sent_as})

    async def call(
        self,
        name: EndpointName,
        fields: dict[str, Any],
        images: Sequence[ImageInput],
        cost_usd: float | None = None,
        limits: imaging.ImagingSection | None = None,
    ) -> ImageResult:
        """One paid image call: budget, send with retries and pauses, check the image."""
        endpoint = ENDPOINTS[name]
        body = build_body(endpoint, fields, images)
        self.pausing.check(image=True)
        try:
            held = self.ledger.reserve(cost_usd)
        except BudgetExceeded as exc:
            self.pausing.enter(exc, needed_usd=cost_usd)
            raise
        booked: float | None = None
        times = _Times()
        try:
            path = endpoint.path.lstrip("/")
            with body.request_kwargs() as kwargs:
                response = await self._send(
                    "POST", path, kwargs, image=True, cost_usd=cost_usd, times=times
                )
            booked = cost_usd  # a 200 is charged, whatever its bytes turn out to be
            result = await self._read_image(endpoint, response, limits, times)
        finally:
            self.ledger.settle(held, booked)
        self._log_result(result, fields)
        return result

    # --- models and balance ------------------------------------------------------------------

    async def list_models(self, type: str) -> list[dict[str, Any]]:
        """``GET /models?type=...``: the raw model entries."""
        response = await self._send("GET", "models", {"params": {"type": type}}, image=False)
        data = self._json(response).get("data")
        if not isinstance(data, list):
            msg = f"Venice GET /models?type={type} answered without a data list"
            raise Unavailable(msg, status=response.status_code, request_id=request_id(response))
        return data

    async def balance(self, *, probe: bool = False) -> dict[str, Any]:
        """``GET /billing/balance``: ``canConsume``, ``consumptionCurrency``, ``balances``.
        ``probe=True`` sends it even while the client is paused (to see if it can go on)."""
        response = await self._send("GET", "billing/balance", {}, image=False, probe=probe)
        return self._json(response)

    # --- sending -----------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        kwargs: dict[str, Any],
        *,
        image: bool,
        cost_usd: float | None = None,
        probe: bool = False,
        times: _Times | None = None,
    ) -> httpx.Response:
        """Send with retries; raise the mapped VeniceError for a final failure.

        A failure's consequences for everyone (a 429's hold, a pause) take effect before the
        sending slot is given up, so no queued request slips out. ``times`` sums the time on
        the wire and the time queued for slots over the tries.
        """
        what = f"Venice {method} /{path}"
        times = times if times is not None else _Times()

        async def backoff(seconds: float) -> None:
            with waiting("Venice to take requests again (backing off)") as waited:
                await self._sleep(seconds)
            times.waited_seconds += waited.seconds

        async for attempt in retrying(self.settings, what=what, sleep=backoff):
            with attempt:
                async with self.throttle.sending(image=image, probe=probe) as outcome:
                    times.waited_seconds += outcome.waited_seconds
                    request = self._http.build_request(method, path, **kwargs)
                    started = time.monotonic()
                    try:
                        response = await self._http.send(request)
                    except httpx.TransportError as exc:
                        times.wire_seconds += time.monotonic() - started
                        raise network_error(exc, f"{method} /{path}") from None
                    times.wire_seconds += time.monotonic() - started
                    outcome.failed = not response.is_success
                    if image:
                        self.throttle.limiter.observe(RateLimitState.from_response(response))
                    if not response.is_success:
                        self._fail(response, what, time.monotonic() - started, cost_usd)
                return response
        msg = "unreachable: tenacity reraises the last error"
        raise AssertionError(msg)  # pragma: no cover

    def _fail(
        self, response: httpx.Response, what: str, seconds: float, cost_usd: float | None
    ) -> NoReturn:
        error = error_from_response(response, redact=scrub)
        logger.log(
            "DEBUG" if isinstance(error, Unavailable) else "WARNING",  # retries log their own
            "{} -> {} in {:.2f}s (request {}): {}",
            what,
            response.status_code,
            seconds,
            error.request_id or "-",
            error.message,
        )
        if response.status_code == 429 and isinstance(error, Unavailable) and error.retry_after:
            self.throttle.limiter.hold(min(error.retry_after, self.settings.max_rate_wait_seconds))
        if isinstance(error, AuthError | BalanceError):
            self.pausing.enter(error, needed_usd=cost_usd)
        raise error

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            msg = f"Venice {response.request.url.path} answered with a body that is not JSON"
            raise Unavailable(msg, status=response.status_code, request_id=request_id(response))
        return body

    # --- responses ---------------------------------------------------------------------------

    async def _read_image(
        self,
        endpoint: Endpoint,
        response: httpx.Response,
        limits: imaging.ImagingSection | None,
        times: _Times,
    ) -> ImageResult:
        media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        headers = ResultHeaders.from_response(response)
        fmt = _FORMATS.get(media_type)
        where = f"Venice {endpoint.path} (request {headers.request_id or '-'})"
        if fmt is None:
            msg = f"{where} answered 200 with Content-Type {media_type or 'none'}, not an image"
            raise OperationError(msg, hint="try again later; report it to Venice if it persists")
        data = response.content
        image = await asyncio.to_thread(_verify, data, fmt, limits, where)
        return ImageResult(
            data=data,
            format=fmt,
            media_type=media_type,
            image=image,
            headers=headers,
            simulated=as_bool(response.headers.get(SIMULATED_HEADER)),
            endpoint=endpoint.path,
            seconds=round(times.wire_seconds, 3),
            waited_seconds=round(times.waited_seconds, 3),
        )

    def _log_result(self, result: ImageResult, fields: dict[str, Any]) -> None:
        h = result.headers
        model = h.model_id or fields.get("model") or fields.get("modelId") or "-"
        queued = result.waited_seconds
        waited = f", queued {queued:.2f}s for a slot" if queued else ""
        logger.info(
            "Venice {} 200 in {:.2f}s on the wire{} (request {}, model {}, {}, balance {})",
            result.endpoint,
            result.seconds,
            waited,
            h.request_id or "-",
            model,
            f"{result.format} {result.image.width}x{result.image.height}",
            f"${h.balance_usd:.2f}" if h.balance_usd is not None else "-",
        )
        if h.content_violation:
            logger.warning(
                "Venice {} flagged the result as a content violation (request {})",
                result.endpoint,
                h.request_id or "-",
            )
        if h.deprecation and model not in _deprecation_warned:
            _deprecation_warned.add(model)
            replacement = f"; use {h.replacement} instead" if h.replacement else ""
            logger.warning("Venice model {} is deprecated: {}{}", model, h.deprecation, replacement)


@dataclass
class _Times:
    """One call's time on the wire and time queued for slots, summed over its tries."""

    wire_seconds: float = 0.0
    waited_seconds: float = 0.0


def _verify(
    data: bytes, fmt: str, limits: imaging.ImagingSection | None, where: str
) -> Image.Image:
    """Decode ``data`` through the imaging gate after checking it is ``fmt``."""
    hint = "try again later; report it to Venice if it persists"
    try:
        Image.open(io.BytesIO(data), formats=[fmt]).close()  # reads the header only
    except UnidentifiedImageError as exc:
        msg = f"{where} answered 200 as {fmt}, but the bytes are not a {fmt} image"
        raise OperationError(msg, hint=hint) from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        msg = f"{where} answered 200 with {fmt} bytes that do not open: {exc}"
        raise OperationError(msg, hint=hint) from exc
    try:
        image = imaging.decode(data, limits or imaging.ImagingSection(), name=where)
    except HotfolderError as exc:
        msg = f"{where} answered 200 with an image that does not decode: {exc}"
        raise OperationError(msg, hint=hint) from exc
    return image
