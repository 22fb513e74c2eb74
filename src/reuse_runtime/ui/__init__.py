"""The web UI: runs, their action trees and timelines, logs, reports, environments.

It serves what the runs store recorded (:class:`~reuse_runtime.store.RunReader`)
and what a live controller holds now (:class:`LiveState`, optional), behind the
controller's own token. The controller starts it beside its gRPC server, the
embedded default on a free loopback port, and ``reuse-runtime ui`` over a store
alone; see :class:`WebUI`.

Modules: :mod:`~.server` (the lifecycle), :mod:`~.app` (routes and the guard),
:mod:`~.auth` (sessions, CSRF, login links), :mod:`~.pages` and :mod:`~.api`
(handlers), :mod:`~.views` and :mod:`~.tree` (what each shows), :mod:`~.live`
(the controller's side), :mod:`~.history` (the hour chart), :mod:`~.preview`
(values without unpickling code), :mod:`~.format` (filters). Templates and the
vendored htmx and Chart.js (with their licences) are package data.
"""

from reuse_runtime.ui.live import Abort, LiveState, PoolCounters, RunningAction, RunningPage
from reuse_runtime.ui.server import WebUI

__all__ = [
    "Abort",
    "LiveState",
    "PoolCounters",
    "RunningAction",
    "RunningPage",
    "WebUI",
]
