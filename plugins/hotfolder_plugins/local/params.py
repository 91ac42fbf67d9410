"""Parameter types the local operations share: image formats and colours as users write them."""

from __future__ import annotations

from typing import Annotated

from PIL import ImageColor
from pydantic import AfterValidator, BeforeValidator

from hotfolder import ConfigError, imaging


def _pillow_format(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return imaging.format_for(value)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def _colour(value: str) -> str:
    ImageColor.getrgb(value)
    return value


#: A format name as users write it (``jpg``, ``JPEG``, ``.png``, ``tif``), stored as Pillow's.
ImageFormat = Annotated[str, BeforeValidator(_pillow_format)]

#: A colour Pillow understands: ``white``, ``#ff8800``, ``rgb(255, 136, 0)``.
Colour = Annotated[str, AfterValidator(_colour)]
