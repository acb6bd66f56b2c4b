"""``python3 main.py translations``: extract every ``_()`` string and bring the catalogs up to
date (Babel), so adding a string to a screen is one ``_()`` and one command.

Two domains, both under ``kiosk/locale``:

- ``kiosk``: the Python modules and the .kv files under ``kiosk/`` (``_`` and ``N_`` calls),
  into ``kiosk.pot`` and each kiosk language's ``kiosk.po``;
- ``dashboard``: the central dashboard's Jinja templates (Babel's jinja2 extractor: ``_()``,
  ``{% trans %}``) and the ``N_()`` strings of its Python (nav labels, notes, errors shown on
  pages), into ``dashboard.pot`` and each dashboard language's ``dashboard.po``. The files
  are only read, never imported: ``kiosk`` does not depend on ``sync``.

New strings arrive empty (the catalog tests then name them until they are translated),
strings no longer used are dropped. ``--check`` changes nothing and exits 1 when a catalog is
out of date.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kiosk.i18n import DOMAIN, LOCALE_DIR, catalog_path
from kiosk.shared.languages import LANGUAGES, catalog_name

SOURCE_DIR = Path(__file__).resolve().parent
ROOT = SOURCE_DIR.parent
KEYWORDS = {"_": None, "N_": None}
METHOD_MAP = [
    ("**/locale/**", "ignore"),
    ("**.py", "python"),
    ("**.kv", "kiosk.catalogs:extract_kv"),
]
_KV_CALL = re.compile(r"""\b(N_|_)\(\s*("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')""")


def extract_kv(fileobj, keywords, comment_tags, options) -> Iterator[tuple]:
    """Babel extraction method for Kivy .kv files: ``_("...")`` with one string literal."""
    for lineno, line in enumerate(io.TextIOWrapper(fileobj, encoding="utf-8"), start=1):
        for match in _KV_CALL.finditer(line):
            if match.group(1) in keywords:
                yield lineno, match.group(1), ast.literal_eval(match.group(2)), []


@dataclass(frozen=True)
class Domain:
    """One catalog family: where its strings are read from and which languages it has."""

    name: str
    sources: tuple[str, ...]  # folders under the repository root
    method_map: tuple[tuple[str, str], ...]
    keywords: dict
    languages: tuple[str, ...]
    what: str  # "the clinic kiosk's screens", for a new catalog's header


# sync/central/dashboard/language.py LANGUAGES but English, the source text.
DASHBOARD_LANGUAGES = ("es",)
DOMAINS = (
    Domain(DOMAIN, ("kiosk",), tuple(METHOD_MAP), KEYWORDS, tuple(LANGUAGES),
           "the clinic kiosk's screens"),
    Domain(
        "dashboard",
        ("sync/central/dashboard", "sync/central/alerts"),
        (("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")),
        {"N_": None, "_": None, "gettext": None, "ngettext": (1, 2)},
        DASHBOARD_LANGUAGES,
        "the central dashboard's pages",
    ),
)
TEMPLATE_OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n",
                                            "trimmed": "true"}}


def template(domain: Domain = DOMAINS[0]):
    """Every string the domain's code marks for translation, as a Babel catalog."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    catalog = Catalog(project="clinic-kiosk", domain=domain.name, charset="utf-8")
    for source in domain.sources:
        for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT / source), list(domain.method_map), keywords=domain.keywords,
            options_map=TEMPLATE_OPTIONS,
        ):
            catalog.add(message, locations=[(f"{source}/{filename}", lineno)],
                        auto_comments=comments, context=context)
    return catalog


def _rendered(catalog, **options) -> bytes:
    from babel.messages.pofile import write_po

    out = io.BytesIO()
    write_po(out, catalog, width=100, omit_header=False, sort_output=True,
             include_lineno=False, **options)
    # The creation date changes on every run; keep it out so an unchanged catalog stays so.
    return re.sub(rb'"POT-Creation-Date: [^"]*"\n', b"", out.getvalue())


def domain_catalog_path(domain: Domain, tag: str) -> Path:
    return catalog_path(tag).with_name(f"{domain.name}.po")


def updated_catalogs() -> dict[Path, bytes]:
    """Every catalog file as it should be now: per domain, the template and one .po per
    language."""
    files = {}
    for domain in DOMAINS:
        files.update(_updated_domain(domain))
    return files


def _updated_domain(domain: Domain) -> dict[Path, bytes]:
    from babel.messages.pofile import read_po

    pot = template(domain)
    files = {LOCALE_DIR / f"{domain.name}.pot": _rendered(pot)}
    for tag in domain.languages:
        path = domain_catalog_path(domain, tag)
        if path.exists():
            with open(path, "rb") as handle:
                catalog = read_po(handle, locale=catalog_name(tag))
        else:
            from babel.messages.catalog import Catalog

            catalog = Catalog(
                locale=catalog_name(tag), domain=domain.name, charset="utf-8", fuzzy=False,
                project="clinic-kiosk", version="0.1.0", msgid_bugs_address="",
                header_comment=f"# {LANGUAGES[tag].english_name} words of {domain.what} "
                "(kiosk/locale; README, Translations).\n"
                "# Not yet reviewed by a native speaker: corrections are welcome.\n#",
            )
        catalog.update(pot, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        files[path] = _rendered(catalog, ignore_obsolete=True)
    return files


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="main.py translations",
        description="Extract the kiosk's and the dashboard's strings and update the catalogs "
        "in kiosk/locale.",
    )
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a catalog is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, content in updated_catalogs().items():
        if path.exists() and path.read_bytes() == content:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
    for path in stale:
        verb = "is out of date" if args.check else "updated"
        print(f"{path.relative_to(SOURCE_DIR.parent)} {verb}")
    if args.check and stale:
        print("Run `python3 main.py translations`, then translate the new empty entries.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
