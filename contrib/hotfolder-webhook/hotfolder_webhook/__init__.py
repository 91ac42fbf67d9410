"""hotfolder-webhook: the ``webhook`` sink, which POSTs each output to a URL, signed.

::

    outputs = [
      { sink = "webhook", url = "https://example.com/hooks/images",
        secret = { env = "HOTFOLDER_WEBHOOK_SECRET" } },
    ]

See :mod:`hotfolder_webhook.sink` for the settings, :mod:`hotfolder_webhook.delivery` for the
request and the retries, and :mod:`hotfolder_webhook.signing` for the signature a receiver
checks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hotfolder
from hotfolder_webhook.signing import sign, verify
from hotfolder_webhook.sink import WebhookSink, WebhookUnavailable

if TYPE_CHECKING:
    from hotfolder import Register

__all__ = ["WebhookSink", "WebhookUnavailable", "sign", "verify"]


@hotfolder.hookimpl
def hotfolder_register_sinks(register: Register) -> None:
    register(WebhookSink)
