"""`Secret`: sensitive values a task reads from its environment, resolved on this machine.

``TaskEnvironment(secrets=[...])`` or ``secrets="openai-key"`` (Flyte's spelling)
makes each secret an environment variable of the environment's replicas: by
default the key upper-cased with ``-`` as ``_`` (``OPENAI_KEY``), or
``Secret(..., as_env_var="NAME")``. Locally the value comes from, in order:

1. the environment variable of that name in the process that starts the run;
2. the environment variable named after the key (``OPENAI_KEY``);
3. a file ``<secrets dir>/<group>/<key>`` or ``<secrets dir>/<key>``, where the
   secrets dir is ``$REUSE_RUNTIME_SECRETS_DIR`` or
   ``~/.config/reuse-runtime/secrets``.

A secret that is nowhere to be found fails the run at once, naming where it was
looked for. Values are never logged and never shown: they travel only in the
replicas' environment.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
from dataclasses import dataclass

from reuse_runtime.errors import SecretNotFoundError, raised_at_callers_line

SECRETS_DIR_ENV = "REUSE_RUNTIME_SECRETS_DIR"
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
FLYTE_MOUNT = "/etc/flyte/secrets"


@raised_at_callers_line
@dataclass
class Secret:
    """A secret a task needs, by its key in the secret store.

    Args:
        key: the secret's name.
        group: an optional group (a folder of the secrets dir, locally).
        mount: Flyte mounts secrets as files under ``/etc/flyte/secrets``; locally
            the secret is given as an environment variable instead (with a warning).
        as_env_var: the environment variable the task reads it from.
    """

    key: str
    group: str | None = None
    mount: pathlib.Path | None = None
    as_env_var: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ValueError(f"Secret key must be a non-empty string, got {self.key!r}")
        if self.mount:
            if str(self.mount) != FLYTE_MOUNT:
                raise ValueError(f"Only {FLYTE_MOUNT} is supported as secret mount path today.")
            from reuse_runtime.sdk.ignored import note_ignored

            note_ignored(
                "Secret(mount=...)",
                "local replicas get secrets as environment variables, never as files",
            )
        elif not self.as_env_var:  # as Flyte: a mounted secret gets no derived name
            name = f"{self.group}_{self.key}" if self.group else self.key
            self.as_env_var = name.replace("-", "_").upper()
        if self.as_env_var is not None and not _ENV_NAME.match(self.as_env_var):
            raise ValueError(
                f"Invalid environment variable name: {self.as_env_var}, must match "
                f"{_ENV_NAME.pattern}"
            )

    def stable_hash(self) -> str:
        data = "|".join((self.key, self.group or "", str(self.mount or ""), self.as_env_var or ""))
        return hashlib.sha256(data.encode()).hexdigest()

    def __hash__(self) -> int:
        return int(self.stable_hash()[:16], 16)

    def __repr__(self) -> str:  # the value is never part of it; say where it goes
        return f"Secret(key={self.key!r}, group={self.group!r}, as_env_var={self.as_env_var!r})"


SecretRequest = str | Secret | list[str | Secret]


def secrets_from_request(secrets: SecretRequest | None) -> list[Secret]:
    """A secret request (a key, a :class:`Secret`, or a list of them) as a list of secrets."""
    if secrets is None:
        return []
    if isinstance(secrets, str):
        return [Secret(key=secrets)]
    if isinstance(secrets, Secret):
        return [secrets]
    if isinstance(secrets, (list, tuple)):
        out = []
        for item in secrets:
            if isinstance(item, str):
                out.append(Secret(key=item))
            elif isinstance(item, Secret):
                out.append(item)
            else:
                raise TypeError(f"Expected secrets to be str or Secret, got {type(item).__name__}")
        return out
    raise TypeError(f"Expected secrets to be of type SecretRequest, got {type(secrets).__name__}")


def secrets_dir() -> pathlib.Path:
    explicit = os.environ.get(SECRETS_DIR_ENV)
    if explicit:
        return pathlib.Path(explicit)
    return pathlib.Path.home() / ".config" / "reuse-runtime" / "secrets"


def resolve(secret: Secret) -> str:
    """The secret's value, from the environment or the secrets dir."""
    env_name = secret.as_env_var or ""
    key_name = secret.key.replace("-", "_").upper()
    for name in (env_name, key_name):
        value = os.environ.get(name) if name else None
        if value is not None:
            return value
    folder = secrets_dir()
    files = [folder / secret.group / secret.key] if secret.group else []
    files.append(folder / secret.key)
    for path in files:
        try:
            return path.read_text().rstrip("\n")
        except OSError:
            continue
    where = " or ".join(f"${n}" for n in dict.fromkeys(n for n in (env_name, key_name) if n))
    raise SecretNotFoundError(
        f"secret {secret.key!r} is not set: set {where}, or write it to "
        f"{' or '.join(str(p) for p in files)}"
    )


def env_name(secret: Secret) -> str:
    """The environment variable a replica reads ``secret`` from.

    A mounted secret (``mount=``, no ``as_env_var``) has no name of its own in Flyte;
    here it is the key upper-cased with ``-`` as ``_`` (``V2_SECRET_TEST``).
    """
    return secret.as_env_var or secret.key.replace("-", "_").upper()


def resolve_all(secrets: list[Secret]) -> dict[str, str]:
    """Environment variable -> value for every secret (raises naming the first one missing)."""
    return {env_name(s): resolve(s) for s in secrets}


__all__ = ["Secret", "SecretRequest"]
