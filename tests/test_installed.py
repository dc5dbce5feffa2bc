"""The project installed from its wheel, away from a source checkout: the commands that once needed the
checkout's files (`ilp dictionary`, the demo's FHIR server) work from the installed package alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from foundation.model import dictionary

CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel installed (without its dependencies, which this environment has) into a folder."""
    work = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(work / "wheel"),
                    str(CHECKOUT)], check=True, capture_output=True, timeout=600)
    (wheel,) = (work / "wheel").glob("ilp_cohort-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(work / "site"), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    return work


def _python(installed: Path, code: str) -> str:
    """Run code with the installed copy first on the path, from a folder outside the checkout."""
    done = subprocess.run([sys.executable, "-c", code], cwd=installed, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(installed / "site"),
                               "ILP_CACHE_DIR": str(installed / "cache")})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_dictionary_prints_from_an_installed_copy(installed: Path) -> None:
    out = _python(installed, "from foundation.model import dictionary as d; assert not d.in_checkout(), d.CHECKOUT; "
                             "from ilp.cli import app; app(['dictionary'], standalone_mode=False)")
    assert out == dictionary.render()


def test_the_demo_server_installs_its_packages_once_and_serves(installed: Path) -> None:
    code = ("import json, demo.fhir_server as f; s = f.FhirTestServer(); "
            "print(json.dumps({'module': f.__file__, 'home': str(f.server_home()), "
            "'fhir': s.admin.get('/fhir/metadata').json()['fhirVersion']})); s.stop()")
    first = json.loads(_python(installed, code))
    assert first["module"].startswith(str(installed / "site"))  # not the checkout's
    assert first["home"].startswith(str(installed / "cache")) and first["fhir"].startswith("4.")
    assert json.loads(_python(installed, code))["home"] == first["home"]  # installed once, then reused
