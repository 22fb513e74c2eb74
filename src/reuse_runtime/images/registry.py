"""Where an environment's image lives in a registry, for backends that cannot build.

A Kubernetes controller runs in the cluster, far from the files a recipe copies
and from any engine, so it cannot build images: it names them. The name of a
recipe's image in a registry is computable from the recipe alone (its JSON, as
the environment sends it, and reuse-runtime's version)::

    REGISTRY/NAME:r-<digest of the recipe>

``reuse-runtime image build FILE.py --registry REGISTRY --push`` builds each
environment's image (as for containers) and pushes it under that name; a
controller started with ``--image-registry REGISTRY`` then runs pods from it.

The digest covers the recipe, not the content of the folders it copies: after
changing baked-in files, build and push again (the same name then points at
the new image; pods pull it when ``--image-pull-policy Always``). A recipe that
bakes the project's code bundle (``with_code_bundle()``) is the exception: its
tag covers the bundle's digest too, so each code version has its own image.
"""

from __future__ import annotations

import hashlib
from typing import Any

from reuse_runtime._version import __version__
from reuse_runtime.errors import ImageBuildError, PolicyError
from reuse_runtime.images.recipe import Image, parse_image_field

#: Prefix of a recipe tag, so it cannot be mistaken for the builder's content tags.
TAG_PREFIX = "r-"


def recipe_tag(image: Image, code_bundle: str = "") -> str:
    """The tag of a recipe's image in a registry: a digest of the recipe and our version
    (and of the code bundle it bakes, for a ``with_code_bundle()`` recipe)."""
    raw = f"{image.to_json()}\0reuse-runtime {__version__}"
    if code_bundle and image.code_bundle_layer() is not None:
        raw += f"\0code bundle {code_bundle}"
    return TAG_PREFIX + hashlib.sha256(raw.encode()).hexdigest()[:20]


def registry_reference(image_field: str, registry: str | None, code_bundle: str = "") -> str:
    """The image a pod of an environment runs: its ``image`` field, resolved.

    An image *name* is used as it is. A recipe names ``REGISTRY/NAME:r-DIGEST``,
    with the recipe's own ``registry`` if it has one, else ``registry``;
    ``code_bundle`` is the digest of the code version the pod runs.
    """
    parsed = parse_image_field(image_field)
    if isinstance(parsed, str):
        return parsed
    where = (parsed.registry or registry or "").rstrip("/")
    if not where:
        raise PolicyError(
            f"the image recipe ({parsed.describe()}) needs a registry to be pulled from: start "
            f"the controller with --image-registry REGISTRY (or give Image(registry=...)), and "
            f"push it with `reuse-runtime image build FILE.py --registry REGISTRY --push`"
        )
    return f"{where}/{parsed.name or 'reuse-runtime'}:{recipe_tag(parsed, code_bundle)}"


def publish(client: Any, built: str, reference: str, *, push: bool) -> None:
    """Tag the built image ``built`` as ``reference`` in the engine, and push it if asked."""
    import docker.errors

    repository, _, tag = reference.rpartition(":")
    try:
        client.images.get(built).tag(repository, tag)
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"cannot tag {built} as {reference}: {exc}") from None
    if not push:
        return
    try:
        for line in client.images.push(repository, tag, stream=True, decode=True):
            if isinstance(line, dict) and line.get("error"):
                raise ImageBuildError(f"pushing {reference} failed: {line['error']}")
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"pushing {reference} failed: {exc}") from None


__all__ = ["TAG_PREFIX", "publish", "recipe_tag", "registry_reference"]
