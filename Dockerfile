# loadlab: the harness (the wheel, with its shipped scenarios and experiments) and
# ministack, the local AWS of the embedded stack, in its own virtual environment
# (it pins botocore exactly; see scripts/bootstrap). Runs as an unprivileged user.
#
#   docker build -t loadlab .
#   docker run --rm loadlab gameday pod-kill-mid-session --run-dir runs/gameday
#   docker run --rm -e LOADLAB_TARGET_URL -e LOADLAB_JWT_SECRET loadlab \
#       run flash_sale --target "$LOADLAB_TARGET_URL"
#
# deploy/k8s/ runs this image as the Locust master and workers and as the game-day CronJob.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir "uv==0.13.8"
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY requirements/ requirements/
COPY loadlab/ loadlab/
COPY scenarios/ scenarios/
COPY chaos/ chaos/
# The wheel, installed with the locked versions of its dependencies (dev.lock as
# constraints: the dev tools are not installed); ministack from its own pin.
RUN uv build --wheel --out-dir /dist . \
    && uv venv --python /usr/local/bin/python3.11 /opt/loadlab \
    && uv pip install --no-cache --python /opt/loadlab/bin/python \
        --constraint requirements/dev.lock /dist/loadlab-*.whl \
    && uv venv --python /usr/local/bin/python3.11 /opt/ministack \
    && uv pip install --no-cache --python /opt/ministack/bin/python \
        -r requirements/ministack.txt
# A fixed path for loadlab's locustfile (plain `locust -f`, as deploy/k8s runs the
# Locust master and workers); it fails the build if the wheel lacks the module.
RUN ln -s "$(/opt/loadlab/bin/python -c 'import importlib.util as u; print(u.find_spec("loadlab.app.locustfile").origin)')" \
        /opt/loadlab/locustfile.py \
    && test -f /opt/loadlab/locustfile.py

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="loadlab" \
      org.opencontainers.image.description="Load generation and chaos testing for AI agent endpoints" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 loadlab \
    && useradd --system --uid 10001 --gid loadlab --create-home --home-dir /home/loadlab loadlab \
    && install -d -o loadlab -g loadlab /work
COPY --from=build /opt/loadlab /opt/loadlab
COPY --from=build /opt/ministack /opt/ministack
# The embedded stack finds ministack through LOADLAB_MINISTACK_BIN; its state
# (.loadlab/) and the run directories (runs/) go under the working directory, and
# matplotlib's cache under /tmp (so the root filesystem may be read-only).
ENV PATH=/opt/loadlab/bin:$PATH \
    LOADLAB_MINISTACK_BIN=/opt/ministack/bin/ministack \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /work
USER 10001:10001
# 8089: Locust's web UI (master); 5557: the master's port for its workers;
# 9646: the run's Prometheus metrics (--metrics-port, as deploy/k8s sets it).
EXPOSE 8089 5557 9646
# The image runs batch commands (run, gameday: they exit with their verdict), so a
# health probe belongs where a long-lived process is, e.g. the Locust master in
# deploy/k8s (readiness and liveness probes on port 8089), not in the image.
HEALTHCHECK NONE
ENTRYPOINT ["loadlab"]
CMD ["--help"]
