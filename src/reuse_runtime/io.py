"""``flyte.io``: `File` and `Dir` (see :mod:`reuse_runtime.sdk.io`)."""

from reuse_runtime.sdk.io import Dir, File

__all__ = ["Dir", "File"]
