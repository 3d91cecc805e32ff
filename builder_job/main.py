"""The builder job's entry point: wiring only.

Run as ``python -m builder_job`` by the local launcher and as the Cloud Run
job's command; either way the build request arrives in
``NIXERY_BUILD_REQUEST`` and everything else comes from the settings. A
batch (``NIXERY_BUILD_BATCH``) is split between the execution's tasks by
``CLOUD_RUN_TASK_INDEX`` / ``CLOUD_RUN_TASK_COUNT`` (:mod:`builder_job.batch`).
Exit status: 0 built, 1 a build failed (recorded), 2 nothing could be
recorded (bad configuration or request).
"""

from __future__ import annotations

import logging
import os
import sys

from builder_job.pipeline import run_build
from launcher.port import BATCH_VARIABLE, BuildBatch, BuildRequest, LaunchError
from registry import wiring
from registry.logs import LABELS, TRACE, configure_logging
from registry.settings import ConfigError, Settings


def main() -> int:
    configure_logging()
    log = logging.getLogger("builder_job")
    if os.environ.get(BATCH_VARIABLE):
        return _batch(log)
    try:
        settings = Settings.from_env()
        request = BuildRequest.from_environ(os.environ)
    except (ConfigError, LaunchError, ValueError, KeyError) as exc:
        log.error("cannot start the build: %s", exc)
        return 2
    TRACE.set(request.trace)
    LABELS.set({"build_id": request.build_id, "image": f"{request.spec.name}:{request.spec.tag}"})
    store = wiring.blob_store(settings)
    metadata = wiring.metadata_store(settings)
    return 0 if run_build(request, settings, store, metadata) else 1


def _batch(log: logging.Logger) -> int:
    from builder_job.batch import run_share

    try:
        settings = Settings.from_env()
        batch = BuildBatch.from_env(os.environ[BATCH_VARIABLE])
        index = int(os.environ.get("CLOUD_RUN_TASK_INDEX", "0"))
        count = int(os.environ.get("CLOUD_RUN_TASK_COUNT", "1"))
        batch.share(index, count)  # checks the index
    except (ConfigError, ValueError, KeyError) as exc:
        log.error("cannot start the batch: %s", exc)
        return 2
    store = wiring.blob_store(settings)
    metadata = wiring.metadata_store(settings)
    return run_share(batch, index, count, settings, store, metadata)


if __name__ == "__main__":
    sys.exit(main())
