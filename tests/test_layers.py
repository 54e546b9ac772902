"""`make lint` enforces the package's layers (import-linter, the contract in setup.cfg): a
copy of the package with one wrong-way import added fails it, naming that import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from supportdesk.core.config import PROJECT_ROOT

LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--config", str(tree / "setup.cfg")],
        cwd=tree,  # lint-imports reads the package found here, not the installed one
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(
        PROJECT_ROOT / "supportdesk", root / "supportdesk", ignore=shutil.ignore_patterns("*.pyc")
    )
    shutil.copy(PROJECT_ROOT / "setup.cfg", root / "setup.cfg")
    return root


def test_the_package_as_it_is_keeps_its_layers(tree):
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("core/text.py", "supportdesk.web.app"),  # core imports nothing of ours
        ("files/storage.py", "supportdesk.accounts.auth"),  # siblings stay apart
        ("mail/outbound/compose.py", "supportdesk.tickets.service"),  # upward
        ("tickets/service.py", "supportdesk.mail.inbound.service"),  # upward
        ("web/health.py", "supportdesk.worker.process"),  # web and worker never meet
        ("worker/process.py", "supportdesk.web.app"),
        ("web/app.py", "supportdesk.dev.seed"),  # dev is for the CLI alone
    ],
)
def test_a_wrong_way_import_fails_the_lint(tree, module, imported):
    target = tree / "supportdesk" / module
    original = target.read_text()
    target.write_text(original + f"\nimport {imported}  # noqa\n")
    try:
        result = _lint(tree)
    finally:
        target.write_text(original)
    assert result.returncode != 0
    importer = "supportdesk." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {imported}" in result.stdout
