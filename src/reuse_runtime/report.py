"""``flyte.report``, under Flyte's names: ``import reuse_runtime.report`` (or
``flyte.report`` after ``import reuse_runtime as flyte``). See
:mod:`reuse_runtime.sdk.report`."""

from reuse_runtime.sdk.report import (
    Report,
    Tab,
    current_report,
    flush,
    get_tab,
    log,
    replace,
)

__all__ = ["Report", "Tab", "current_report", "flush", "get_tab", "log", "replace"]
