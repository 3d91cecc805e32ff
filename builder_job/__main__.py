"""``python -m builder_job``: see :mod:`builder_job.main`."""

import sys

from builder_job.main import main

sys.exit(main())
