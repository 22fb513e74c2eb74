# The reuse-runtime worker image: one replica per container.
#
# On a machine with no registry (build the base once with `reuse-runtime image base`):
#
#   rm -rf wheels && pip wheel -w wheels . \
#     && podman build --format docker --build-arg BASE_IMAGE=localhost/bookworm-python -t reuse-runtime .
#
# BASE_IMAGE needs python3 with venv. When ./wheels holds wheels (built on the
# host as above: the project's own wheel and all its dependencies), the build
# installs from them alone and needs no network; otherwise pip uses its index.
# Remove a stale ./wheels first: pip would take whatever version it finds there.
#
# The controller's image for Kubernetes (`reuse-runtime k8s manifests --image ...`)
# needs the `kubernetes` extra: build it with `--build-arg EXTRAS='[kubernetes]'`
# (and `pip wheel -w wheels '.[kubernetes]'` for an offline build).
#
# The container backend does not use this file: it builds each environment's
# image from its `Image` recipe (`reuse-runtime image build FILE.py`).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
# Extras to install with it, e.g. '[kubernetes]' for the controller's image.
ARG EXTRAS=""

ENV VIRTUAL_ENV=/opt/reuse-runtime \
    PATH=/opt/reuse-runtime/bin:$PATH \
    PYTHONUNBUFFERED=1
RUN python3 -m venv "$VIRTUAL_ENV"

COPY . /src
# Install the project's wheel by name: `pip install /src` would build it from
# source, which needs setuptools and wheel, and those are not in ./wheels.
RUN if ls /src/wheels/reuse_runtime-*.whl >/dev/null 2>&1; then \
        pip install --no-cache-dir --no-index --find-links /src/wheels "reuse-runtime${EXTRAS}"; \
    else \
        pip install --no-cache-dir "/src${EXTRAS}"; \
    fi \
    && rm -rf /src

# WORKDIR alone does not put the directory in the image (podman kube play then
# fails with 'workdir "/app" does not exist'): create it.
RUN mkdir -p /app
WORKDIR /app

# A replica started from this image serves tasks on 50051. It listens on every
# interface inside the container, which needs a token (REUSE_RUNTIME_TOKEN) or
# mTLS, or the worker refuses to start. Add `--controller HOST:PORT
# --environment NAME` to attach it to a standalone controller.
EXPOSE 50051
# reuse-runtime-init is PID 1: it forwards SIGTERM (so `stop` drains the
# worker), reaps orphans, and reports an out-of-memory kill of the worker.
ENTRYPOINT ["reuse-runtime-init", "reuse-runtime", "worker"]
CMD ["--host", "0.0.0.0", "--port", "50051"]
# The standard gRPC health service answers without the token.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["reuse-runtime", "health", "127.0.0.1:50051"]
