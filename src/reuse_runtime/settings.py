"""Every setting of reuse-runtime, declared once: environment variables and config-file keys.

The docs' configuration page (``docs/configuration.md``) is made from this module, and
tests hold it to the code: every ``REUSE_RUNTIME_*`` name in ``src/`` is declared here,
every variable declared here is used there, each ``source`` names the constant the code
really defaults to, and :data:`CONFIG` lists exactly the keys the config file accepts.

A floor module: it imports nothing from the package. ``source`` is a dotted path
(``module:attribute``), read by the tests only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Who sets a variable: you, or the runtime for the processes it starts.
SetBy = Literal["you", "runtime"]


@dataclass(frozen=True)
class Variable:
    """One ``REUSE_RUNTIME_*`` environment variable."""

    name: str
    #: The value in force when it is unset (``None``: nothing, or what :attr:`unset` says).
    default: int | float | str | None
    #: What the value is counted in, or its form.
    unit: str
    #: One line: what it changes.
    meaning: str
    #: Where the default lives in the code, when it is a constant there (``module:attr``).
    source: str | None = None
    #: ``runtime``: set by reuse-runtime in the environment of the processes it starts;
    #: read there, documented so a person reading a replica's environment knows it.
    set_by: SetBy = "you"
    #: What happens when it is unset, where that is not just :attr:`default`.
    unset: str = ""


@dataclass(frozen=True)
class ConfigKey:
    """One key of the config file's ``[section]``."""

    section: str
    key: str
    #: The TOML type it takes (``str`` or ``int``).
    kind: type
    #: When absent: shown as written.
    default: str
    meaning: str
    #: The environment variable or ``init()`` argument that does the same, if any.
    same_as: str = ""
    source: str | None = None


_MI = 2**20

VARIABLES: tuple[Variable, ...] = (
    # ---------------------------------------------------------------- where things are
    Variable(
        "REUSE_RUNTIME_HOME",
        None,
        "path",
        "the state directory (mode 0700): tokens, run logs, replica logs, the cache",
        unset="$XDG_CACHE_HOME/reuse-runtime, else ~/.cache/reuse-runtime",
    ),
    Variable(
        "REUSE_RUNTIME_STORE",
        None,
        "path",
        "the file store of flyte.io.File and Dir; containers mount it at the same path",
        unset="<state dir>/store",
    ),
    Variable(
        "REUSE_RUNTIME_CONFIG",
        None,
        "path",
        "the config file init_from_config() reads first",
        unset="./.reuse-runtime.toml, else ~/.config/reuse-runtime/config.toml, else none",
    ),
    Variable(
        "REUSE_RUNTIME_SECRETS_DIR",
        None,
        "path",
        "where a flyte.Secret not in the environment is read from (<dir>/<key>)",
        unset="~/.config/reuse-runtime/secrets",
    ),
    # ---------------------------------------------------------------- where tasks run
    Variable(
        "REUSE_RUNTIME_ENDPOINT",
        None,
        "HOST:PORT or dns:///HOST:PORT",
        "a standalone controller for init() and status; like init(endpoint=...)",
        unset="an embedded controller in the driver process",
    ),
    Variable(
        "REUSE_RUNTIME_BACKEND",
        "local",
        "local | container | kubernetes",
        "where the embedded (or a standalone) controller runs replicas",
    ),
    Variable(
        "REUSE_RUNTIME_CONTROLLER_PORT",
        50050,
        "port",
        "where `reuse-runtime controller` listens, and where `status` looks",
        source="reuse_runtime.cli.common:DEFAULT_CONTROLLER_PORT",
    ),
    Variable(
        "REUSE_RUNTIME_METRICS_PORT",
        None,
        "port (0: any free port)",
        "the embedded controller serves Prometheus metrics on 127.0.0.1 at this port",
        unset="no metrics",
    ),
    Variable(
        "REUSE_RUNTIME_UI_PORT",
        50080,
        "port (0: any free port)",
        "where the web UI listens: `reuse-runtime controller` and `reuse-runtime ui` (a "
        "free port when this default is taken); the embedded controller's, on 127.0.0.1",
        source="reuse_runtime.cli.common:DEFAULT_UI_PORT",
        unset="50080 for a standalone controller and `reuse-runtime ui`; a free port for "
        "the embedded one",
    ),
    Variable(
        "REUSE_RUNTIME_UI",
        None,
        "0 | false | no | off",
        "turns the embedded controller's web UI off",
        unset="the embedded controller serves its web UI while the process runs",
    ),
    # ---------------------------------------------------------------- security
    Variable(
        "REUSE_RUNTIME_TOKEN",
        None,
        "string",
        "the shared token of servers and clients (`authorization: Bearer ...`)",
        unset="servers make one up and record it in the state directory for their user",
    ),
    Variable(
        "REUSE_RUNTIME_TOKEN_FILE",
        None,
        "path",
        "a file holding the token (a mounted Kubernetes Secret); read when the token is unset",
    ),
    Variable("REUSE_RUNTIME_TLS_CERT", None, "path", "PEM certificate, for mTLS"),
    Variable("REUSE_RUNTIME_TLS_KEY", None, "path", "PEM private key, for mTLS"),
    Variable(
        "REUSE_RUNTIME_TLS_CA",
        None,
        "path",
        "PEM CA bundle: peers' certificates must be signed by it (mTLS)",
    ),
    # ---------------------------------------------------------------- pools and clients
    Variable(
        "REUSE_RUNTIME_MIN_TTL_SECONDS",
        30.0,
        "seconds",
        "the floor of ReusePolicy's idle_ttl and scaledown_ttl (0 for tests and demos)",
        source="reuse_runtime.policy:DEFAULT_MIN_TTL_SECONDS",
    ),
    Variable(
        "REUSE_RUNTIME_MAX_OUTSTANDING",
        10_000,
        "tasks",
        "unfinished tasks one client keeps at the controller; the rest wait in the client",
        source="reuse_runtime.client.admission:MAX_OUTSTANDING",
    ),
    Variable(
        "REUSE_RUNTIME_MAX_OUTSTANDING_BYTES",
        64 * _MI,
        "bytes, or a size like 256Mi",
        "argument bytes one client keeps at the controller; callers past it wait in order",
        source="reuse_runtime.client.admission:MAX_OUTSTANDING_BYTES",
    ),
    Variable(
        "REUSE_RUNTIME_RECONNECT_TIMEOUT",
        300.0,
        "seconds",
        "how long a client waits for a lost controller to come back before tasks fail",
        source="reuse_runtime.client.controller:RECONNECT_TIMEOUT",
    ),
    Variable(
        "REUSE_RUNTIME_REPLAY_BYTES",
        64 * _MI,
        "bytes, or a size like 1Gi (0 keeps none)",
        "child results a controller keeps for durable replay, over all parents",
        source="reuse_runtime.controller.replay:REPLAY_BYTES",
    ),
    # ---------------------------------------------------------------- code bundles
    Variable(
        "REUSE_RUNTIME_MAX_BUNDLE_BYTES",
        64 * _MI,
        "bytes, or a size like 64Mi",
        "the largest code bundle: the client's files in it, and what a controller takes",
        source="reuse_runtime.bundles.archive:MAX_BUNDLE_BYTES",
    ),
    Variable(
        "REUSE_RUNTIME_CODE_DELIVERY",
        "auto",
        "auto | fetch",
        "`fetch`: every replica fetches the code bundle, even those that see your files",
        unset="replicas that see the client's files import from them; the others fetch",
    ),
    Variable(
        "REUSE_RUNTIME_CODE_DIR",
        None,
        "path",
        "where a replica unpacks the code bundles it fetches, a folder per version",
        unset="<state dir>/code (a pod: an emptyDir; a remote container: /tmp)",
    ),
    # ---------------------------------------------------------------- the runs store
    Variable(
        "REUSE_RUNTIME_RUNS_DB",
        None,
        "path",
        "the runs store: a SQLite file of runs, their tasks and logs (values beside it)",
        unset="<state dir>/runs.sqlite",
    ),
    Variable(
        "REUSE_RUNTIME_RUNS_MAX",
        10_000,
        "runs",
        "the most runs the store keeps; the oldest finished ones go first",
        source="reuse_runtime.store.settings:StoreSettings.max_runs",
    ),
    Variable(
        "REUSE_RUNTIME_RUNS_MAX_AGE_DAYS",
        30.0,
        "days",
        "finished runs older than this are removed from the store",
        source="reuse_runtime.store.settings:StoreSettings.max_age_days",
    ),
    Variable(
        "REUSE_RUNTIME_RUNS_MAX_BYTES",
        2 * 2**30,
        "bytes, or a size like 2Gi (at least 1Mi)",
        "the whole store (database, its log, value files) stays under this",
        source="reuse_runtime.store.settings:StoreSettings.max_bytes",
    ),
    Variable(
        "REUSE_RUNTIME_RUNS_BLOB_BYTES",
        64 * 2**10,
        "bytes, or a size like 64Ki",
        "values and log lines larger than this go to files beside the database",
        source="reuse_runtime.store.settings:StoreSettings.blob_threshold",
    ),
    Variable(
        "REUSE_RUNTIME_RUNS_FLUSH_MS",
        100,
        "milliseconds",
        "how often the store's writer commits what has arrived",
    ),
    Variable(
        "REUSE_RUNTIME_RUNS_RECORD",
        1,
        "1 | 0 (true, yes, on | false, no, off)",
        "0: a controller records no runs (they are its own while it runs; none survive it)",
    ),
    Variable(
        "REUSE_RUNTIME_PROGRESS",
        None,
        "0 | false | no | off",
        "turns Run.wait()'s progress bar off",
        unset="a progress bar on a terminal, none when piped",
    ),
    # ---------------------------------------------------------------- process tuning
    Variable(
        "REUSE_RUNTIME_GC",
        None,
        "python | gen0,gen1,gen2",
        "garbage-collector thresholds of the runtime's processes; `python` keeps Python's",
        unset="1000000,20,100 (see the performance page)",
    ),
    Variable(
        "REUSE_RUNTIME_MALLOC",
        None,
        "glibc",
        "`glibc` keeps glibc's malloc settings in the runtime's processes",
        unset="freed memory kept for reuse: mmap threshold 16 MiB, trim 64 MiB, one arena",
    ),
    Variable(
        "REUSE_RUNTIME_FORK_SERVER",
        "on",
        "on | off",
        "local replicas forked from a process that imported the runtime once (`off`: each "
        "starts its own interpreter)",
    ),
    Variable(
        "REUSE_RUNTIME_LOG_LEVEL",
        "info",
        "debug | info | warning | error",
        "the runtime's log level; `debug` also shows every traceback frame",
    ),
    Variable(
        "REUSE_RUNTIME_LOG_FORMAT",
        None,
        "json | console",
        "log lines as JSON or for people",
        unset="JSON into files, readable on a terminal",
    ),
    # ---------------------------------------------------------------- containers and images
    Variable(
        "REUSE_RUNTIME_CONTAINER_NETWORK",
        "bridge",
        "bridge | host | a network's name",
        "the network replica containers join",
    ),
    Variable(
        "REUSE_RUNTIME_CONTAINER_REMOTE",
        None,
        "1 | 0",
        "1: the engine runs on another host, so containers mount nothing of this machine "
        "and fetch the code bundle",
        unset="told from DOCKER_HOST: a unix socket or loopback is this machine",
    ),
    Variable(
        "REUSE_RUNTIME_CONTAINER_LABELS",
        None,
        "k=v,k2=v2",
        "extra labels on every container and image the runtime makes",
    ),
    Variable(
        "REUSE_RUNTIME_DEBIAN_BASE",
        "localhost/bookworm-python",
        "image name",
        "the image Image.from_debian_base() starts from (`reuse-runtime image base` makes it)",
        source="reuse_runtime.images.builder:DEFAULT_DEBIAN_BASE",
    ),
    Variable(
        "REUSE_RUNTIME_IMAGE_REGISTRY",
        None,
        "registry/path",
        "the registry of environments' images, for the kubernetes backend's pods",
    ),
    # ---------------------------------------------------------------- kubernetes
    Variable(
        "REUSE_RUNTIME_K8S_NAMESPACE",
        None,
        "namespace",
        "where the kubernetes backend makes pods",
        unset="the service account's namespace in a pod, else the kubeconfig's",
    ),
    Variable(
        "REUSE_RUNTIME_K8S_NAME",
        "reuse-runtime",
        "name",
        "the controller's name: its pods' label, its Service, its token Secret",
        source="reuse_runtime.backends.kubernetes:DEFAULT_NAME",
    ),
    Variable(
        "REUSE_RUNTIME_K8S_TOKEN_SECRET",
        None,
        "Secret name",
        "the Secret whose `token` replicas mount",
        unset="<name>-token",
    ),
    Variable(
        "REUSE_RUNTIME_K8S_POD_LABELS",
        None,
        "k=v,k2=v2",
        "extra labels on every pod the kubernetes backend makes",
    ),
    Variable(
        "REUSE_RUNTIME_POD_NAME",
        None,
        "pod name",
        "the controller's own pod, owner of the pods it makes (the manifests set it)",
        set_by="runtime",
    ),
    # ---------------------------------------------------------------- set for replicas
    Variable(
        "REUSE_RUNTIME_INIT_DIR",
        None,
        "path",
        "where a replica container's PID 1 (reuse-runtime-init) writes its exit record",
        set_by="runtime",
    ),
    Variable(
        "REUSE_RUNTIME_STORE_SHARED",
        None,
        "0",
        "0 in a replica whose file store is its own (a pod, a remote container): "
        "flyte.ctx().checkpoint refuses there",
        set_by="runtime",
    ),
    Variable(
        "REUSE_RUNTIME_TERMINATION_LOG",
        None,
        "path",
        "where reuse-runtime-init writes a pod's termination message",
        set_by="runtime",
    ),
    Variable(
        "REUSE_RUNTIME_OWN_ENVIRONMENT",
        None,
        "environment name",
        "in a replica pod: the environment it serves",
        set_by="runtime",
    ),
    Variable(
        "REUSE_RUNTIME_OWN_RECIPE",
        None,
        "image name",
        "in a replica pod: the image it was started from",
        set_by="runtime",
    ),
    Variable(
        "REUSE_RUNTIME_CODE_VERSION",
        "",
        "string",
        "what flyte.ctx().version reports inside a task",
    ),
)

CONFIG: tuple[ConfigKey, ...] = (
    ConfigKey(
        "controller",
        "endpoint",
        str,
        "none: the embedded controller",
        "a standalone controller, HOST:PORT or dns:///HOST:PORT",
        same_as="$REUSE_RUNTIME_ENDPOINT, init(endpoint=...)",
    ),
    ConfigKey(
        "controller",
        "token",
        str,
        "$REUSE_RUNTIME_TOKEN, else the one found for the address",
        "the controller's token",
        same_as="$REUSE_RUNTIME_TOKEN, init(token=...)",
    ),
    ConfigKey(
        "controller",
        "max_backlog",
        int,
        "100000",
        "tasks that may wait per environment before submissions are refused",
        same_as="init(max_backlog=...), `controller --max-backlog`",
        source="reuse_runtime.controller.server:DEFAULT_MAX_BACKLOG",
    ),
    ConfigKey(
        "controller",
        "replica_loss_budget",
        int,
        "2",
        "retries of a task whose replica died under it, apart from its own retries",
        same_as="init(replica_loss_budget=...), `controller --replica-loss-budget`",
        source="reuse_runtime.controller.server:ControllerConfig.replica_loss_budget",
    ),
    ConfigKey(
        "controller",
        "backend",
        str,
        "local",
        "the embedded controller's replicas: local, container or kubernetes",
        same_as="$REUSE_RUNTIME_BACKEND, init(backend=...)",
    ),
    ConfigKey(
        "controller",
        "container_network",
        str,
        "bridge",
        "the network of replica containers: bridge, host, or a network's name",
        same_as="$REUSE_RUNTIME_CONTAINER_NETWORK, init(container_network=...)",
    ),
    ConfigKey(
        "controller",
        "metrics_port",
        int,
        "none: no metrics",
        "the embedded controller serves /metrics on 127.0.0.1 at this port (0: any)",
        same_as="$REUSE_RUNTIME_METRICS_PORT, init(metrics_port=...)",
    ),
)


def variable(name: str) -> Variable:
    """The declared variable ``name``; ``KeyError`` if it is not declared."""
    for declared in VARIABLES:
        if declared.name == name:
            return declared
    raise KeyError(name)
