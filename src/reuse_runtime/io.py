"""``flyte.io``: `File`, `Dir` and hash methods (see :mod:`reuse_runtime.sdk.io`)."""

from reuse_runtime.sdk.io import Dir, EmptyDir, File
from reuse_runtime.sdk.io_handle import HashFunction

__all__ = ["Dir", "EmptyDir", "File", "HashFunction"]
