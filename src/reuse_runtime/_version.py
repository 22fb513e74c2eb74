"""The version of reuse-runtime, at the bottom of the package, where any layer may read it."""

__version__ = "0.1.0"


def version() -> str:
    """The version of reuse-runtime."""
    return __version__
