"""hotfolder-s3: the ``s3`` sink (upload results to a bucket) and the ``s3`` resolver (read
``s3://bucket/key`` inputs), for AWS S3 and S3-compatible servers::

    [chains.web]
    steps = [{ op = "resize", width = 1600 }]
    outputs = [{ sink = "s3", bucket = "my-photos", prefix = "web/", key = "{stem}-{hash8}.{ext}" }]

    [resolvers.s3]                 # only needed for a non-AWS server or a fixed region
    endpoint_url = "http://127.0.0.1:9000"

Credentials come from boto3's standard chain (environment, profile, instance role), never
from the hotfolder config. See README.md for every setting and error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import hotfolder
from hotfolder_s3.resolver import S3Resolver
from hotfolder_s3.sink import S3Sink

if TYPE_CHECKING:
    from hotfolder import Register

__all__ = ["S3Resolver", "S3Sink"]


@hotfolder.hookimpl
def hotfolder_register_sinks(register: Register) -> None:
    register(S3Sink)


@hotfolder.hookimpl
def hotfolder_register_resolvers(register: Register) -> None:
    register(S3Resolver)
