"""``flyte.storage``'s ``Storage``/``S3``/``GCS``/``ABFS``: Flyte's fields, fsspec's arguments."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from reuse_runtime.storage import ABFS, GCS, S3, Storage, get_configured_fsspec_kwargs


def test_the_fields_are_flytes() -> None:
    def names(cls: type) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    base = ["retries", "backoff", "enable_debug", "attach_execution_metadata"]
    assert names(Storage) == base
    assert names(S3) == [
        *base,
        "endpoint",
        "access_key_id",
        "secret_access_key",
        "region",
        "addressing_style",
    ]
    assert names(GCS) == base
    assert names(ABFS) == [
        *base,
        "account_name",
        "account_key",
        "tenant_id",
        "client_id",
        "client_secret",
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        S3().region = "x"  # type: ignore[misc]


def test_auto_reads_flytes_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYTE_AWS_ENDPOINT", "http://minio:9000")
    monkeypatch.setenv("FLYTE_AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("FLYTE_AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("FLYTE_STORAGE_RETRIES", "7")
    monkeypatch.setenv("FLYTE_STORAGE_BACKOFF_SECONDS", "2")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "acct")
    s3 = S3.auto(region="eu-west-1")
    assert (s3.endpoint, s3.access_key_id, s3.region, s3.retries) == (
        "http://minio:9000",
        "id",
        "eu-west-1",
        7,
    )
    assert s3.backoff == timedelta(seconds=2)
    assert get_configured_fsspec_kwargs("s3") == {
        "key": "id",
        "secret": "secret",
        "endpoint_url": "http://minio:9000",
        "config_kwargs": {"retries": {"max_attempts": 7}},
    }
    assert get_configured_fsspec_kwargs("abfs")["account_name"] == "acct"
    assert get_configured_fsspec_kwargs("gs", anonymous=True)["token"] == "anon"
    assert get_configured_fsspec_kwargs("file") == {}
    assert S3.for_sandbox().endpoint == "http://localhost:4566"
