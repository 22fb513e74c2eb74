"""``reuse-runtime image base|build``: the Debian base image, and environments' images."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from reuse_runtime.cli.common import Commands, add_command, complete_python_files, load_script
from reuse_runtime.errors import ReuseRuntimeError


def add_parser(commands: Commands) -> None:
    from reuse_runtime.images.builder import DEFAULT_DEBIAN_BASE

    p = add_command(commands, "image", "make the Debian base, or build environments' images")
    actions = p.add_subparsers(dest="action", required=True)
    base = add_command(
        actions,
        "base",
        "make the Debian base image (debootstrap; about a minute; as root) with no registry",
    )
    base.add_argument(
        "--tag",
        help=f"image name (default: $REUSE_RUNTIME_DEBIAN_BASE, else {DEFAULT_DEBIAN_BASE})",
    )
    base.add_argument("--suite", default="bookworm", help="Debian release (default bookworm)")
    base.add_argument("--mirror", help="Debian mirror URL (default: debootstrap's)")
    base.add_argument("--rebuild", action="store_true", help="make it even if it exists")
    base.set_defaults(sync_main=_image_base)
    build = add_command(
        actions, "build", "build the image of every environment a Python file defines"
    )
    build.add_argument(
        "file", help="the Python file that defines the environments"
    ).completer = complete_python_files  # type: ignore[attr-defined]
    build.add_argument(
        "--registry",
        help="also tag each image REGISTRY/NAME:r-<recipe digest>: the name a controller with "
        "--image-registry REGISTRY gives its pods (default: no such tag)",
    )
    build.add_argument("--push", action="store_true", help="push those tags (needs --registry)")
    build.set_defaults(sync_main=_image_build)


def _image_base(args: argparse.Namespace) -> int:
    import docker.errors

    from reuse_runtime import engine
    from reuse_runtime.backends.container import ContainerConfig
    from reuse_runtime.images.builder import debian_base
    from reuse_runtime.images.debian import make_debian_base

    tag = args.tag or debian_base()
    client = engine.connect()
    if not args.rebuild:
        try:
            image = client.images.get(tag)
        except docker.errors.ImageNotFound:
            pass
        else:
            python = (image.labels or {}).get("io.reuse-runtime.python", "?")
            print(f"{tag} is already in the engine (Python {python}); --rebuild makes it again")
            return 0
    labels = dict(ContainerConfig.from_env().labels)
    python = make_debian_base(client, tag, suite=args.suite, mirror=args.mirror, labels=labels)
    print(f"{tag}: Debian {args.suite} with Python {python}")
    return 0


def _image_build(args: argparse.Namespace) -> int:
    import time

    from reuse_runtime import engine
    from reuse_runtime.backends.container import ContainerConfig
    from reuse_runtime.bundles import build_bundle
    from reuse_runtime.images.builder import ImageBuilder
    from reuse_runtime.images.recipe import baked_copy_style, parse_image_field
    from reuse_runtime.paths import state_dir
    from reuse_runtime.sdk.environment import TaskEnvironment, TaskTemplate

    path = Path(args.file)
    if not path.is_file():
        raise ReuseRuntimeError(f"no such file: {path}")
    module = load_script(path)
    environments: dict[str, TaskEnvironment] = {}
    for value in vars(module).values():
        env = value.env if isinstance(value, TaskTemplate) else value
        if isinstance(env, TaskEnvironment):
            environments.setdefault(env.name, env)
    if not environments:
        raise ReuseRuntimeError(f"{path} defines no TaskEnvironment")
    config = ContainerConfig.from_env()
    client = engine.connect()
    builder = ImageBuilder(client, cache_dir=state_dir() / "build", labels=dict(config.labels))

    def progress(name: str) -> Callable[[str], None]:
        return lambda line: print(f"[{name}] {line}", flush=True)

    if args.push and not args.registry:
        raise ReuseRuntimeError("--push needs --registry: where to push the images")
    for name, env in environments.items():
        started = time.monotonic()
        image_field = env.spec().image
        image = parse_image_field(image_field)
        code, digest = None, ""
        style = baked_copy_style(image_field)
        if style is not None:
            # with_code_bundle(): the bundle a run from here names, baked in.
            bundle = build_bundle(None, style)
            if bundle is None:
                raise ReuseRuntimeError(f"{name}: with_code_bundle() found no files to bake")
            code, digest = (bundle.digest, lambda data=bundle.data: data), bundle.digest
            print(f"[{name}] code bundle {digest[:12]}: {bundle.files} files", flush=True)
        built = builder.ensure(image, progress=progress(name), code=code)
        for notice in built.notices if not built.built else ():
            print(f"[{name}] notice: {notice}")
        state = "built" if built.built else "up to date"
        took = time.monotonic() - started
        print(f"{name}: {built.tag} ({state}, {took:.1f} s)", flush=True)
        if args.registry:
            from reuse_runtime.images.registry import publish, registry_reference

            reference = registry_reference(image_field, args.registry, digest)
            publish(client, built.tag, reference, push=args.push)
            print(f"{name}: {reference} ({'pushed' if args.push else 'tagged'})", flush=True)
    return 0
