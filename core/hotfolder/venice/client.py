"""The Venice image client: one connection pool, one rate limiter and breaker per API key.

::

    client = VeniceClient(base_url="https://api.venice.ai/api/v1", api_key=key)
    result = await client.edit(ImageInput(data=png, media_type="image/png"), prompt="...")
    result.data, result.format, result.image, result.headers.request_id

Every image call goes through the same path: the daily budget is checked, the request waits
for the pauses (auth, balance), the breaker and a rate slot, is sent, retried on 429, 5xx,
timeouts and resets, and its 200 body is checked to decode as the format its Content-Type
names. 401/403 pause all sending (AuthError); a 402 holds all image requests while the
balance is polled, then they go on by themselves.

A server that answers with a simulated image, not a real one, says so with the response header
``X-Simulated: true`` (the local sandbox, :mod:`hotfolder_sandbox`, does on every image);
:attr:`ImageResult.simulated` reports it. Nothing else about the server is special-cased.

``persist=False`` keeps the model list and the daily spend ledger in memory instead of the
cache folder: for a server that lives only as long as the run, such as a sandbox.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import httpx
from loguru import logger
from PIL import Image, UnidentifiedImageError

from hotfolder import imaging
from hotfolder.errors import (
    AuthError,
    BalanceError,
    HotfolderError,
    OperationError,
    Unavailable,
)
from hotfolder.redact import register_secret, scrub
from hotfolder.venice.catalog import Catalog
from hotfolder.venice.cost import SpendLedger
from hotfolder.venice.errors import error_from_response, network_error
from hotfolder.venice.headers import RateLimitState, ResultHeaders, as_bool, request_id
from hotfolder.venice.limiter import BalanceGate, CircuitBreaker, RateLimiter, Throttle
from hotfolder.venice.retry import retrying
from hotfolder.venice.settings import VeniceSection
from hotfolder.venice.wire import ENDPOINTS, Endpoint, EndpointName, ImageInput, build_body

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
    seconds: float


class _PaymentRequired(Exception):
    """A 402 for an API-key user: wait for the balance, then send again."""

    def __init__(self, error: BalanceError) -> None:
        super().__init__(error.message)
        self.error = error


class VeniceClient:
    """Talks to one Venice API root with one key.

    ``base_url`` is the API root (``https://api.venice.ai/api/v1``, or a sandbox's
    ``http://127.0.0.1:PORT/api/v1``); ``settings`` supplies the limits, timeouts, retry and
    pause policy, cache folder and daily budget (its ``api_key`` and ``base_url`` are not
    used here); ``transport`` replaces the network (``httpx.MockTransport`` in tests);
    ``sleep`` replaces ``asyncio.sleep`` for the backoff and rate waits. ``persist=False``
    keeps the model list and the spend ledger in memory only (a sandbox's, which gets a new
    port each run); otherwise they are kept in the cache folder.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        settings: VeniceSection | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        persist: bool = True,
    ) -> None:
        if not api_key:
            msg = "VeniceClient needs an API key"
            raise AuthError(msg, hint="export VENICE_API_KEY=...")
        self.settings = settings or VeniceSection()
        self.base_url = base_url.rstrip("/")
        register_secret(api_key)  # scrubbed from every log line and error message
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
        self.throttle = Throttle(
            RateLimiter(s.requests_per_minute, sleep=sleep),
            CircuitBreaker(s.breaker_failures, s.breaker_window_seconds),
            BalanceGate(
                self.balance,
                first_seconds=s.balance_poll_seconds,
                max_seconds=s.balance_poll_max_seconds,
                wait_seconds=s.balance_wait_seconds,
                sleep=sleep,
            ),
            max_in_flight=s.max_connections,
        )
        cache_dir = s.effective_cache_dir() if persist else None
        self.catalog = Catalog(
            self.list_models,
            cache_dir=cache_dir,
            base_url=self.base_url,
            ttl_seconds=s.models_ttl_seconds,
        )
        self.ledger = SpendLedger(
            cache_dir, base_url=self.base_url, max_usd_per_day=s.max_usd_per_day
        )

    @classmethod
    def from_settings(
        cls, settings: VeniceSection, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> VeniceClient:
        """A client for ``[venice]``: the key from its SecretRef (AuthError when missing) and
        the effective base URL (``$VENICE_BASE_URL`` wins)."""
        return cls(
            base_url=settings.effective_base_url(),
            api_key=settings.require_api_key(),
            settings=settings,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"<VeniceClient {self.base_url} key=***>"

    def resume(self) -> None:
        """Send again after a 401/403 pause, once the key has been fixed (a daemon's job)."""
        self.throttle.resume_auth()

    async def aclose(self) -> None:
        await self.throttle.balance.aclose()
        await self._http.aclose()

    async def __aenter__(self) -> VeniceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the four image endpoints ------------------------------------------------------------

    async def edit(
        self,
        image: ImageInput,
        *,
        prompt: str,
        cost_usd: float | None = None,
        limits: imaging.ImagingSection | None = None,
        **fields: Any,
    ) -> ImageResult:
        """``POST /image/edit``; ``fields``: model, aspect_ratio, resolution, output_format,
        safe_mode, enhance_prompt, disable_prompt_optimization_thinking."""
        return await self.call("edit", {"prompt": prompt, **fields}, [image], cost_usd, limits)

    async def multi_edit(
        self,
        images: Sequence[ImageInput],
        *,
        prompt: str,
        cost_usd: float | None = None,
        limits: imaging.ImagingSection | None = None,
        **fields: Any,
    ) -> ImageResult:
        """``POST /image/multi-edit``; the first image is the base. ``fields``: modelId,
        quality and the edit fields except model."""
        return await self.call("multi-edit", {"prompt": prompt, **fields}, images, cost_usd, limits)

    async def upscale(
        self,
        image: ImageInput,
        *,
        scale: float | None = None,
        creativity: float | None = None,
        cost_usd: float | None = None,
        limits: imaging.ImagingSection | None = None,
    ) -> ImageResult:
        """``POST /image/upscale`` (bytes only: the endpoint takes no URL)."""
        fields = {"scale": scale, "creativity": creativity}
        return await self.call("upscale", fields, [image], cost_usd, limits)

    async def background_remove(
        self,
        image: ImageInput,
        *,
        cost_usd: float | None = None,
        limits: imaging.ImagingSection | None = None,
    ) -> ImageResult:
        """``POST /image/background-remove``: a PNG with alpha."""
        return await self.call("background-remove", {}, [image], cost_usd, limits)

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
        held = self.ledger.reserve(cost_usd)
        booked: float | None = None
        try:
            started = time.monotonic()
            response = await self._send_image(endpoint, body.request_kwargs(), cost_usd)
            booked = cost_usd  # a 200 is charged, whatever its bytes turn out to be
            result = await self._read_image(endpoint, response, limits, started)
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

    async def balance(self) -> dict[str, Any]:
        """``GET /billing/balance``: ``canConsume``, ``consumptionCurrency``, ``balances``."""
        response = await self._send("GET", "billing/balance", {}, image=False)
        return self._json(response)

    # --- sending -----------------------------------------------------------------------------

    async def _send_image(
        self, endpoint: Endpoint, kwargs: dict[str, Any], cost_usd: float | None
    ) -> httpx.Response:
        path = endpoint.path.lstrip("/")
        while True:
            try:
                response = await self._send("POST", path, kwargs, image=True, cost_usd=cost_usd)
            except _PaymentRequired:
                continue  # the balance gate holds the next try until the account can pay
            self.throttle.balance.succeeded()
            return response

    async def _send(
        self,
        method: str,
        path: str,
        kwargs: dict[str, Any],
        *,
        image: bool,
        cost_usd: float | None = None,
    ) -> httpx.Response:
        """Send with retries; raise the mapped VeniceError for a final failure.

        A failure's consequences for everyone (a 429's hold, an auth pause, a balance wait)
        take effect before the sending slot is given up, so no queued request slips out.
        """
        what = f"Venice {method} /{path}"
        async for attempt in retrying(self.settings, what=what, sleep=self._sleep):
            with attempt:
                async with self.throttle.sending(image=image) as outcome:
                    request = self._http.build_request(method, path, **kwargs)
                    started = time.monotonic()
                    try:
                        response = await self._http.send(request)
                    except httpx.TransportError as exc:
                        raise network_error(exc, f"{method} /{path}") from None
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
        if isinstance(error, AuthError):
            self.throttle.pause_for_auth(error)
        if isinstance(error, BalanceError):
            self.throttle.balance.trip(error, needed_usd=cost_usd)
            raise _PaymentRequired(error)
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
        started: float,
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
            seconds=round(time.monotonic() - started, 3),
        )

    def _log_result(self, result: ImageResult, fields: dict[str, Any]) -> None:
        h = result.headers
        model = h.model_id or fields.get("model") or fields.get("modelId") or "-"
        logger.info(
            "Venice {} 200 in {:.2f}s (request {}, model {}, {}, balance {})",
            result.endpoint,
            result.seconds,
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
