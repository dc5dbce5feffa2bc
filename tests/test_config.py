"""The consortium configuration: documented examples load; mistakes name the file, the key and what was expected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors import BulkSettings, FilesSettings, RestSettings
from demo.synth.dialects import OwnExtensionsRenderer
from demo.synth.profiles import DORADO
from foundation.errors import ConfigError, exit_codes, exit_codes_text
from ilp.cli import app
from ilp.config import load_config
from ilp.spark import spark_settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TOP = 'name = "t"\nroot = "zones"\nsecret = { env = "ILP_SECRET" }\n'


def _blocks() -> list[str]:
    """The TOML examples of the README, the configuration guide and the onboarding guide."""
    return [block for doc in (ROOT / "README.md", DOCS / "configuration.md", DOCS / "onboarding.md")
            for block in re.findall(r"```toml\n(.*?)```", doc.read_text(), flags=re.DOTALL)]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "consortium.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("block", range(len(_blocks())))
def test_every_documented_example_loads(tmp_path: Path, block: int) -> None:
    text = _blocks()[block]
    config = load_config(_write(tmp_path, text if text.startswith("name") else TOP + text))
    assert config.centres and config.root.is_absolute()


def test_the_documented_examples_cover_every_source_and_auth_kind(tmp_path: Path) -> None:
    sources, auths = set(), set()
    for text in _blocks():
        for centre in load_config(_write(tmp_path, text if text.startswith("name") else TOP + text)).centres:
            sources.add(centre.source.kind)
            if isinstance(centre.source, RestSettings | BulkSettings):
                auths.add(centre.source.auth.kind)
    assert sources == {"rest", "bulk", "files"}
    assert auths == {"none", "basic", "bearer", "client-credentials", "smart-backend"}


def test_the_documented_view_overrides_are_the_ones_the_round_trip_proves(tmp_path: Path) -> None:
    """Dorado's overrides in the guides are exactly those its synthetic data needs (tests/test_transforms_roundtrip
    reads them back from the generator's views.toml and recovers the ground truth)."""
    needed = OwnExtensionsRenderer(DORADO, 1).views()
    documented = [centre.views for text in _blocks() if "[centres.views" in text
                  for centre in load_config(_write(tmp_path, TOP + text)).centres if centre.views]
    assert len(documented) == 3 and all(views == needed for views in documented)


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, TOP + '[[centres]]\nid = "a"\nconceptmaps = "maps/a"\n'
                                               'source = { kind = "files", folder = "exports/a" }\n'))
    assert config.root == tmp_path / "zones" and config.centres[0].conceptmaps == tmp_path / "maps" / "a"
    assert isinstance(config.centres[0].source, FilesSettings)
    assert config.centres[0].source.folder == tmp_path / "exports" / "a"


@pytest.mark.parametrize(("text", "expected"), [
    (TOP, "centres: required key is missing"),
    (TOP + '[[centres]]\nid = "Bad Id"\nsource = { kind = "files", folder = "x" }\n', "centres[0].id: String should"),
    (TOP + '[[centres]]\nid = "a"\nsource = { kind = "rest", base_url = "fhir.example" }\n',
     "centres[0].source.base_url: expected an http(s) URL"),
    (TOP + '[[centres]]\nid = "a"\nsource = { kind = "ftp", folder = "x" }\n', "centres[0].source: Input tag 'ftp'"),
    (TOP + '[[centres]]\nid = "a"\nsourc = { kind = "files", folder = "x" }\n', "centres[0].sourc: unknown key"),
    (TOP + '[[centres]]\nid = "a"\n[centres.source]\nkind = "bulk"\nbase_url = "https://x"\nlevel = "group"\n',
     "`group_id` is required"),
    (TOP + '[[centres]]\nid = "a"\n[centres.source]\nkind = "rest"\nbase_url = "https://x"\n'
           'auth = { kind = "basic", username = "u" }\n', "auth kind 'basic' needs password"),
    (TOP + '[[centres]]\nid = "a"\nsource = { kind = "files", folder = "x" }\n'
           '[[centres]]\nid = "a"\nsource = { kind = "files", folder = "y" }\n', "repeated: a"),
    (TOP.replace('"zones"', '"hdfs://namenode/ilp"') + '[[centres]]\nid = "a"\nsource = { kind = "files", '
                                                         'folder = "x" }\n', "URIs are not supported yet"),
    ('name = "t"\nroot = "z"\nsecret = { env = "A", file = "b" }\n', "secret: give exactly one of"),
    ("name = \n", "not valid TOML"),
    (TOP + '[cohort]\nprocedure_kinds = ["perfusion"]\n[[centres]]\nid = "a"\n'
           'source = { kind = "files", folder = "x" }\n',
     "cohort: procedure_kinds: unknown kinds ['perfusion']; the shipped ValueSet has ilp, resection"),
    (TOP + '[cohort]\nperformed_from = 2020-01-01\nperformed_until = 2010-01-01\n[[centres]]\nid = "a"\n'
           'source = { kind = "files", folder = "x" }\n', "performed_from is after performed_until"),
    (TOP + 'identifier_system = "urn:oid:1.2.3"\n[[centres]]\nid = "a"\nsource = { kind = "files", folder = "x" }\n',
     "declare it, with that key, in a [linkage] section"),
    (TOP + '[linkage]\nidentifier_system = "urn:oid:1.2.3"\n[[centres]]\nid = "a"\n'
           'source = { kind = "files", folder = "x" }\n', "linkage.secret: required key is missing"),
])
def test_mistakes_name_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value) and expected in str(error.value), str(error.value)
    assert error.value.exit_code == 2


def test_a_secret_pasted_into_the_file_is_not_echoed(tmp_path: Path) -> None:
    path = _write(tmp_path, TOP + '[[centres]]\nid = "a"\n[centres.source]\nkind = "rest"\nbase_url = "https://x"\n'
                                  'auth = { kind = "bearer", token = "s3cr3t-t0ken-value" }\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "centres[0].source.auth.token" in str(error.value) and "s3cr3t" not in str(error.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.toml")


def test_usage_mistakes_are_configuration_errors_before_any_work(tmp_path: Path) -> None:
    """A snapshot that is not there, a centre with nothing landed, a setting that is not Spark's: exit 2 with
    what to do (the first two are checked before a Spark session is asked for)."""
    runner = CliRunner()
    missing = runner.invoke(app, ["validate", "--root", str(tmp_path), "--snapshot", str(tmp_path / "run=nope")])
    assert isinstance(missing.exception, ConfigError) and missing.exception.exit_code == 2
    assert "no cohort snapshot at" in str(missing.exception)
    nothing = runner.invoke(app, ["transform", "--root", str(tmp_path), "--centre", "zeta", "--secret-env",
                                  "ILP_TEST_SECRET"], env={"ILP_TEST_SECRET": "a-centre-secret-0123456789"})
    assert isinstance(nothing.exception, ConfigError) and "nothing landed yet for zeta" in str(nothing.exception)
    with pytest.raises(ConfigError, match=r"must start with 'spark\.'"):
        spark_settings({"foo": "bar"})


def test_exit_codes_are_listed_once_and_shown_by_help() -> None:
    """The codes come from the error classes; `ilp --help` and docs/running.md say exactly those."""
    codes = exit_codes()
    assert list(codes) == list(range(11)), codes  # every code from 0 to 10 has a meaning
    shown = " ".join(CliRunner().invoke(app, ["--help"], terminal_width=200).output.split())
    documented = " ".join((Path(__file__).parents[1] / "docs" / "running.md").read_text(encoding="utf-8").split())
    for text in (shown, documented):
        assert exit_codes_text() in text
