"""``[plugins.notify]``: where to send, what, and how often at most."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, ValidationInfo

import hotfolder

#: What can be sent: a job failed for good; paid work paused (key refused, no balance) or
#: resumed; the daily budget is spent (a pause too); a watched folder has been gone for
#: ``unreachable_after_seconds`` (and, once reported, that it is back).
EventName = Literal["job_failed", "paused", "resumed", "budget_reached", "folder_unreachable"]
EVENTS: tuple[EventName, ...] = get_args(EventName)

APPRISE_URLS = "https://github.com/caronc/apprise/wiki"


def _ref_or_url(value: Any, info: ValidationInfo) -> Any:
    """A table is a :class:`hotfolder.SecretRef` (said plainly when it is not one), anything
    else a URL: one error per entry, not one per member of the union."""
    if not isinstance(value, Mapping):
        return value
    try:
        return hotfolder.SecretRef.model_validate(value, context=info.context)
    except ValidationError as exc:
        why = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the table'}: {e['msg']}".replace(
                "Value error, ", ""
            )
            for e in exc.errors()
        )
        msg = f'a URL by reference is {{ env = "NAME" }} or {{ file = "path" }} ({why})'
        raise ValueError(msg) from None


def _known(value: hotfolder.SecretRef | str) -> hotfolder.SecretRef | str:
    """A URL written out must be one Apprise can send to (one by reference is read, and
    checked, when the daemon starts)."""
    if isinstance(value, str) and not understood(value):
        scheme = value.split("://", 1)[0] if "://" in value else value[:20]
        msg = (
            f"Apprise has no service for {scheme!r} URLs, or the URL is incomplete; see "
            f"{APPRISE_URLS} for each service's URL"
        )
        raise ValueError(msg)
    return value


#: An Apprise URL, written out or by reference.
Url = Annotated[hotfolder.SecretRef | str, BeforeValidator(_ref_or_url), AfterValidator(_known)]


class NotifySettings(hotfolder.PluginSettings):
    """``[plugins.notify]``; without ``urls`` nothing is sent."""

    #: Apprise URLs (``mailtos://…``, ``ntfys://…``, ``json://host/path``…), each written out
    #: or, when it holds a token or a password, by reference: ``{ env = "NOTIFY_URL" }``.
    urls: list[Url] = []
    #: The events that are sent.
    events: list[EventName] = list(EVENTS)
    #: Events within this long of the first one unsent go out together, as one message; 0
    #: sends each at once.
    digest_seconds: float = Field(default=60.0, ge=0)
    #: A watched folder is reported once it has been gone this long.
    unreachable_after_seconds: float = Field(default=300.0, ge=0)
    #: The start of every message's title.
    title: str = Field(default="hotfolder", min_length=1)


def understood(url: str) -> bool:
    """Whether Apprise can send to ``url`` (its own complaint is not logged: the caller's
    error says what is wrong, with the key path)."""
    import apprise

    quiet = logging.getLogger("apprise")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL + 1)
    try:
        return apprise.Apprise.instantiate(url) is not None
    finally:
        quiet.setLevel(level)
