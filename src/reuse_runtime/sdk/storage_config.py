"""``flyte.storage``'s configuration classes: ``Storage``, ``S3``, ``GCS``, ``ABFS``.

Frozen dataclasses with Flyte's fields and environment variables. Flyte hands
them to obstore; here :meth:`Storage.get_fsspec_kwargs` gives the keyword
arguments of the usual fsspec backends (s3fs, gcsfs, adlfs), which
``reuse_runtime.storage`` uses for ``s3://``, ``gs://`` and ``abfs://`` paths.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, ClassVar


def _env_settings(mapping: dict[str, str]) -> dict[str, Any]:
    """The fields whose environment variable is set, converted to the field's type."""
    found: dict[str, Any] = {}
    for field_name, variable in mapping.items():
        value = os.environ.get(variable)
        if value is None:
            continue
        if field_name == "retries":
            found[field_name] = int(value)
        elif field_name == "backoff":
            found[field_name] = datetime.timedelta(seconds=float(value))
        elif field_name == "enable_debug":
            found[field_name] = value.strip().lower() in ("1", "true", "yes", "on")
        else:
            found[field_name] = value
    return found


@dataclass(frozen=True)
class Storage:
    """Settings for any storage provider."""

    retries: int = 3
    backoff: datetime.timedelta = datetime.timedelta(seconds=5)
    enable_debug: bool = False
    attach_execution_metadata: bool = True

    _KEY_ENV_VAR_MAPPING: ClassVar[dict[str, str]] = {
        "enable_debug": "FLYTE_STORAGE_DEBUG",
        "retries": "FLYTE_STORAGE_RETRIES",
        "backoff": "FLYTE_STORAGE_BACKOFF_SECONDS",
    }

    @classmethod
    def auto(cls) -> Storage:
        """The settings from the environment (``FLYTE_STORAGE_RETRIES``, ...)."""
        return cls(**_env_settings(cls._KEY_ENV_VAR_MAPPING))

    def get_fsspec_kwargs(self, anonymous: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Keyword arguments for an fsspec filesystem of this provider; ``kwargs`` win."""
        return dict(kwargs)


@dataclass(frozen=True)
class S3(Storage):
    """S3 settings (``FLYTE_AWS_ENDPOINT``, ``FLYTE_AWS_ACCESS_KEY_ID``, ...), for s3fs."""

    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str | None = None
    addressing_style: str | None = None

    _KEY_ENV_VAR_MAPPING: ClassVar[dict[str, str]] = {
        "endpoint": "FLYTE_AWS_ENDPOINT",
        "access_key_id": "FLYTE_AWS_ACCESS_KEY_ID",
        "secret_access_key": "FLYTE_AWS_SECRET_ACCESS_KEY",
        "addressing_style": "FLYTE_AWS_S3_ADDRESSING_STYLE",
    } | Storage._KEY_ENV_VAR_MAPPING

    @classmethod
    def auto(cls, region: str | None = None) -> S3:
        settings = _env_settings(cls._KEY_ENV_VAR_MAPPING)
        if region is not None:
            settings["region"] = region
        return cls(**settings)

    @classmethod
    def for_sandbox(cls) -> S3:
        """Flyte's local sandbox (MinIO on localhost:4566)."""
        settings = _env_settings(Storage._KEY_ENV_VAR_MAPPING)
        return cls(
            **settings,
            endpoint="http://localhost:4566",
            access_key_id="minio",
            secret_access_key="miniostorage",
        )

    def get_fsspec_kwargs(self, anonymous: bool = False, **kwargs: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if anonymous:
            out["anon"] = True
        if self.access_key_id:
            out["key"] = self.access_key_id
        if self.secret_access_key:
            out["secret"] = self.secret_access_key
        if self.endpoint:
            out["endpoint_url"] = self.endpoint
        config: dict[str, Any] = {}
        if self.region:
            out["client_kwargs"] = {"region_name": self.region}
        if self.addressing_style:
            config["s3"] = {"addressing_style": self.addressing_style}
        if self.retries:
            config["retries"] = {"max_attempts": self.retries}
        if config:
            out["config_kwargs"] = config
        return out | kwargs


@dataclass(frozen=True)
class GCS(Storage):
    """Google Cloud Storage settings, for gcsfs (credentials come from the environment)."""

    @classmethod
    def auto(cls) -> GCS:
        return cls(**_env_settings(cls._KEY_ENV_VAR_MAPPING))

    def get_fsspec_kwargs(self, anonymous: bool = False, **kwargs: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"token": "anon"} if anonymous else {}
        if self.retries:
            out["retries"] = self.retries
        return out | kwargs


@dataclass(frozen=True)
class ABFS(Storage):
    """Azure Blob Storage settings (``AZURE_STORAGE_ACCOUNT_NAME``, ...), for adlfs."""

    account_name: str | None = None
    account_key: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None

    _KEY_ENV_VAR_MAPPING: ClassVar[dict[str, str]] = {
        "account_name": "AZURE_STORAGE_ACCOUNT_NAME",
        "account_key": "AZURE_STORAGE_ACCOUNT_KEY",
        "tenant_id": "AZURE_TENANT_ID",
        "client_id": "AZURE_CLIENT_ID",
        "client_secret": "AZURE_CLIENT_SECRET",
    }

    @classmethod
    def auto(cls) -> ABFS:
        return cls(**_env_settings(cls._KEY_ENV_VAR_MAPPING))

    def get_fsspec_kwargs(self, anonymous: bool = False, **kwargs: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"anon": True} if anonymous else {}
        for name in ("account_name", "account_key", "tenant_id", "client_id", "client_secret"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out | kwargs


__all__ = ["ABFS", "GCS", "S3", "Storage"]
