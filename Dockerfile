# syntax=docker/dockerfile:1
# The eligibility-svc image:  docker build -t eligibility-svc .   (any OCI builder: docker, buildah, kaniko)
#
# Two stages.  The builder turns the project and every dependency into wheels and installs them into a
# virtualenv; the final stage copies only that virtualenv and the sandbox fixtures: no compiler, no pip
# cache, no wheels, no source tree.  All dependencies ship binary wheels for amd64 and arm64; the builder
# has a C compiler for our own wheel only: ELIGIBILITY_SVC_COMPILE=1 compiles the X12 core with mypyc
# (eligibility_svc/core_build.py), about twice as fast as the same modules run as Python.  The metric
# eligibility_x12_core{kind="compiled"} shows it took.
#
# Configuration comes only from the environment (ELIG_*, "__" for nesting) and from Kubernetes Secrets
# mounted as files in ELIG_SECRETS_DIR; nothing is baked in.  With no configuration at all the container runs
# the embedded sandbox default (in-memory cache, sandbox clearinghouse and athenaNet, x12_fixtures below).
#
# The same image runs every process: `serve` (default), `worker`, `batch run ...`.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    ELIGIBILITY_SVC_COMPILE=1
# The compiler stays in this stage; Debian's current gcc is what is wanted, whatever its point release.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install --yes --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md setup.py ./
COPY build_support ./build_support
COPY eligibility_svc ./eligibility_svc
# tzdata from PyPI gives zoneinfo the IANA zones (the cache's day-end TTL), whatever the base image carries.
# The venv has no pip of its own: the base image's pip installs into it, and stays behind in this stage.
RUN pip wheel --wheel-dir /wheels . tzdata==2026.6 \
 && python -m venv --without-pip /opt/venv \
 && pip --python /opt/venv/bin/python install --no-index --find-links /wheels /wheels/*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="eligibility-svc" \
      org.opencontainers.image.description="Insurance eligibility (X12 270/271 over CAQH CORE) for athenahealth practices"
# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric USER.
RUN groupadd --system --gid 10001 elig \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin elig
COPY --from=builder /opt/venv /opt/venv
COPY x12_fixtures /opt/eligibility-svc/x12_fixtures
# pip compiled the bytecode in the builder; the root filesystem is read-only under Kubernetes.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ELIG_PORT=8080 \
    ELIG_SANDBOX__FIXTURES_DIR=/opt/eligibility-svc/x12_fixtures
WORKDIR /opt/eligibility-svc
USER 10001:10001
EXPOSE 8080
# Liveness of `serve` (a worker container has no HTTP port: run it with --no-healthcheck or ignore the status;
# Kubernetes ignores HEALTHCHECK and uses the probes in k8s/).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ELIG_PORT', '8080') + '/healthz', timeout=3)"]
ENTRYPOINT ["eligibility-svc"]
CMD ["serve", "--host", "0.0.0.0"]
