"""The worker process loads what it runs, not the web app (`make lint` checks the import
layers; this checks what `supportdesk worker` actually has in memory)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from supportdesk import cli
from supportdesk.worker import process
print(json.dumps(sorted(sys.modules)))
"""


def test_the_worker_process_does_not_import_the_web_app():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(out.stdout))
    ours = {name for name in loaded if name.startswith("supportdesk.")}
    assert "supportdesk.worker.process" in ours  # the probe ran
    # (supportdesk.webhooks, which the worker delivers, is not the web package)
    assert not {n for n in ours if n == "supportdesk.web" or n.startswith("supportdesk.web.")}
    # Nor the web's libraries: each costs the worker memory it never uses.
    assert not loaded & {"falcon", "jinja2", "gunicorn", "boto3"}
