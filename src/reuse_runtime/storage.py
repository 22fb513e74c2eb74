"""``flyte.storage``: copy, open, stream and test paths (see :mod:`reuse_runtime.sdk.storage`)."""

from reuse_runtime.sdk.storage import (
    exists,
    exists_sync,
    get,
    get_configured_fsspec_kwargs,
    get_random_local_directory,
    get_random_local_path,
    get_stream,
    get_underlying_filesystem,
    is_remote,
    join,
    open,
    put,
    put_stream,
)
from reuse_runtime.sdk.storage_config import ABFS, GCS, S3, Storage

__all__ = [
    "ABFS",
    "GCS",
    "S3",
    "Storage",
    "exists",
    "exists_sync",
    "get",
    "get_configured_fsspec_kwargs",
    "get_random_local_directory",
    "get_random_local_path",
    "get_stream",
    "get_underlying_filesystem",
    "is_remote",
    "join",
    "open",
    "put",
    "put_stream",
]
