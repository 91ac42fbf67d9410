"""The built-in local (Pillow) operations, registered like any third-party plugin.

``auto-orient``, ``resize`` and ``fit-to-limits`` live in :mod:`hotfolder_plugins.local.geometry`,
``convert`` and ``strip-metadata`` in :mod:`~hotfolder_plugins.local.formats`, ``watermark`` in
:mod:`~hotfolder_plugins.local.watermark`. Each is a :class:`hotfolder.Operation` whose ``run``
is synchronous (it runs in a worker thread) and reads pixels through ``image.image``, which
decodes through the safety gate in :mod:`hotfolder.imaging`. Each returns ``image.with_image``,
``with_data`` or ``with_format``, which carry the input's ``info``: an image made from a
simulated answer stays simulated, and its output file carries the simulated mark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hotfolder
from hotfolder_plugins.local.formats import Convert, StripMetadata
from hotfolder_plugins.local.geometry import AutoOrient, FitToLimits, Resize
from hotfolder_plugins.local.watermark import Watermark

if TYPE_CHECKING:
    from hotfolder import Register

OPERATIONS: tuple[type[hotfolder.Operation], ...] = (
    AutoOrient,
    Resize,
    FitToLimits,
    Convert,
    StripMetadata,
    Watermark,
)


@hotfolder.hookimpl
def hotfolder_register_operations(register: Register) -> None:
    """Register the local operations."""
    for operation in OPERATIONS:
        register(operation)
