"""Data Docs that work offline: the scripts and styles GX links from public CDNs, copied into the site.

Many hospital networks reach no CDN. GX's pages then lose their styles, and the index page its table (it is
filled in by bootstrap-table). The same versions of those files come from the npm registry
(`expectations/assets/package.json`: installed by `scripts/setup.sh`, or on first use by `foundation.npm`). After GX
writes the site they are copied under `static/vendor/`, and every page's CDN link is pointed at its copy (the
subresource-integrity attributes go with the CDN links: npm's lock file checks the copies). GX's own images,
which its pages fetch from GX's web site, are pointed at the copies the site already has. A site so rewritten
makes no request outside its own folder.
"""

from __future__ import annotations

import logging
import re
import shutil
from functools import partial
from pathlib import Path

from foundation import npm
from foundation.errors import ConfigError

log = logging.getLogger(__name__)
ASSETS = Path(__file__).parent / "assets"
VENDOR = Path("static") / "vendor"

# CDN URL -> the same file in its npm package
VENDORED = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        "bootstrap-table/dist/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        "bootstrap-table/dist/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        "@fortawesome/fontawesome-free/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
# GX's own images, which its pages load from its web site (with the data context's id in the query) although
# the site has copies under static/images/.
GX_IMAGES = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
GX_STYLES = Path("static") / "styles"
# Files a vendored stylesheet loads by a relative URL: copied with it.
COMPANIONS = {"@fortawesome/fontawesome-free/css/all.min.css": "@fortawesome/fontawesome-free/webfonts"}
_LINK = re.compile(r"""(?P<quote>["'])(?P<url>https://[^"']+)(?P=quote)""")
_TAG = re.compile(r"<(?:script|link|img)\b[^>]*>")
_CSS_URL = re.compile(r"""url\((["']?)(https://[^"')]+)\1\)""")
_NEWSLETTER = re.compile(r"<footer>\s*<p>Stay current on everything GX.*?</footer>", re.DOTALL)
_INTEGRITY = re.compile(r"""\s+(?:integrity|crossorigin)=(["'])[^"']*\1""")


def _packages() -> Path | None:
    """The installed npm packages of the assets (installed on first use outside a checkout); None if npm is not
    there to install them: the Data Docs then still work, online."""
    try:
        return npm.install(ASSETS) / "node_modules"
    except ConfigError as error:
        log.warning("Data Docs will load their scripts and styles from public CDNs: %s", error)
        return None


def make_offline(site: Path) -> list[str]:
    """Copy the vendored files into `site` and point its pages at them; return the CDN URLs still linked (those
    this table does not know: a GX upgrade that links something new), so the caller can say so. Without the
    offline copies (no npm to install them) the site stays as GX wrote it, which `_packages` has said."""
    packages = _packages()
    for page in site.rglob("*.html"):  # a vendor's newsletter is not part of a centre's audit
        html = page.read_text(encoding="utf-8")
        if (plain := _NEWSLETTER.sub("", html)) != html:
            page.write_text(plain, encoding="utf-8")
    if packages is None:
        return []
    for path in {*VENDORED.values(), *COMPANIONS.values()}:
        source, target = packages / path, site / VENDOR / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
    local = {url: (VENDOR / path).as_posix() for url, path in VENDORED.items()}
    local |= {GX_IMAGES + p.name: p.relative_to(site).as_posix() for p in (site / "static" / "images").glob("*")}
    unknown: set[str] = set()
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        prefix = "../" * (len(page.relative_to(site).parts) - 1)
        rewritten = _TAG.sub(partial(_local_tag, local=local, prefix=prefix, unknown=unknown), html)
        if rewritten != html:
            page.write_text(rewritten, encoding="utf-8")
    for sheet in (site / GX_STYLES).glob("*.css"):  # the dark-mode logo: GX ships only the light one
        css = sheet.read_text(encoding="utf-8")
        sheet.write_text(_CSS_URL.sub("url('../images/logo-long.png')", css), encoding="utf-8")
    return sorted(unknown)


def _local_tag(match: re.Match[str], local: dict[str, str], prefix: str, unknown: set[str]) -> str:
    """A script, link or image tag with its URL replaced by the site's copy (and its integrity check dropped)."""
    tag = match.group(0)
    found = _LINK.search(tag)
    if found is None:
        return tag
    path = local.get(found["url"].split("?")[0])
    if path is None:
        unknown.add(found["url"])
        return tag
    quoted = f'{found["quote"]}{prefix}{path}{found["quote"]}'
    return _INTEGRITY.sub("", tag[:found.start()] + quoted + tag[found.end():])
