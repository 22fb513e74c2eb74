# The reuse-runtime worker image: one replica per container.
#
#   podman build --build-arg BASE_IMAGE=localhost/bookworm-python -t reuse-runtime .
#
# BASE_IMAGE needs python3 with venv. Python packages install from wheels in
# ./wheels when present (build them on the host with `pip wheel -w wheels .`),
# so the build needs no network; otherwise pip uses its index.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV VIRTUAL_ENV=/opt/reuse-runtime \
    PATH=/opt/reuse-runtime/bin:$PATH \
    PYTHONUNBUFFERED=1
RUN python3 -m venv "$VIRTUAL_ENV"

WORKDIR /src
COPY . /src
RUN if ls wheels/*.whl >/dev/null 2>&1; then \
        pip install --no-index --find-links wheels /src; \
    else \
        pip install /src; \
    fi \
    && rm -rf /src

WORKDIR /app
# Replicas listen on every interface inside the container: that needs a token
# (REUSE_RUNTIME_TOKEN) or mTLS, or the worker refuses to start.
EXPOSE 50051
ENTRYPOINT ["reuse-runtime", "worker"]
CMD ["--host", "0.0.0.0", "--port", "50051"]
