"""The layers of docs/architecture.md hold: the foundation imports no stage and no application, a stage imports no
other stage and no application, and only the application's demo command uses the demo package.

Every import statement of every module counts, those inside functions too (the CLI imports lazily)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOUNDATION = "foundation"
STAGES = ("connectors", "transforms", "expectations", "analytics")
APPLICATION = "ilp"
DEMO = "demo"
PACKAGES = (FOUNDATION, *STAGES, APPLICATION, DEMO)
DEMO_USERS = ("ilp.demo", "ilp.commands.demo")  # `ilp demo` and `ilp synth`


def allowed(importer: str, imported: str) -> bool:
    """Whether module `importer` (dotted) may import the project package `imported` (its top-level name)."""
    layer = importer.split(".")[0]
    if imported == layer:
        return True
    if layer == FOUNDATION:
        return False
    if layer in STAGES or layer == DEMO:
        return imported == FOUNDATION
    return imported != DEMO or importer in DEMO_USERS  # the application uses everything but the demo


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, root: Path) -> set[str]:
    """The top-level project packages a module imports, absolute or relative."""
    module = module_name(path, root)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            names = [".".join([*base, node.module] if node.module else base)]
        else:
            continue
        found |= {name.split(".")[0] for name in names if name.split(".")[0] in PACKAGES}
    return found


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            importer = module_name(path, root)
            found += [f"{importer} imports {imported}" for imported in sorted(project_imports(path, root))
                      if not allowed(importer, imported)]
    return found


def test_no_module_imports_across_its_layer() -> None:
    assert violations() == []


@pytest.mark.parametrize(("importer", "imported", "ok"), [
    ("foundation.zones", "transforms", False),
    ("foundation.zones", "ilp", False),
    ("transforms.pipeline", "connectors", False),
    ("analytics.report", "expectations", False),
    ("expectations.gate", "ilp", False),
    ("connectors.rest", "demo", False),
    ("ilp.run", "demo", False),
    ("demo.synth.fhir", "transforms", False),
    ("transforms.pipeline", "foundation", True),
    ("ilp.run", "transforms", True),
    ("ilp.commands.demo", "demo", True),
    ("demo.synth.fhir", "foundation", True),
])
def test_the_rules_refuse_what_crosses_a_layer(importer: str, imported: str, ok: bool) -> None:
    assert allowed(importer, imported) is ok


def test_a_stage_importing_another_stage_or_the_application_is_found(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "transforms" / "pipeline.py").write_text("def f():\n    from connectors import rest\n")
    (tmp_path / "foundation" / "zones.py").write_text("from ilp.run import run_consortium\n")
    (tmp_path / "analytics" / "report.py").write_text("import foundation.zones\nimport analytics.plan\n")
    assert violations(tmp_path) == ["foundation.zones imports ilp", "transforms.pipeline imports connectors"]


def test_the_readme_and_docs_link_only_to_files_of_the_repository() -> None:
    """Every relative link in README.md and docs/ names a file or folder that exists, inside the repository (a
    link to a file on the developers' machine works for them and for nobody else), and every `#anchor` into a
    Markdown file names one of its headings."""
    broken = []
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto
            path, _, anchor = target.partition("#")
            resolved = (document.parent / path).resolve() if path else document
            if not resolved.exists() or not resolved.is_relative_to(ROOT):
                broken.append(f"{document.name}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{document.name}: {target} (no such heading)")
    assert broken == []


def _anchors(document: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.+)$", document.read_text(encoding="utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
