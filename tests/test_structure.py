"""The package tree: every package's templates are found, and no two share a name."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import supportwidget
from supportwidget.demo import seed

PACKAGE = Path(supportwidget.__file__).parent


def test_every_template_folder_is_searched_and_every_name_is_unique():
    folders = sorted(path.parent.name for path in PACKAGE.glob("*/templates"))
    assert folders == sorted(supportwidget.TEMPLATE_PACKAGES)
    names = Counter(
        str(path.relative_to(PACKAGE / folder / "templates"))
        for folder in folders
        for path in (PACKAGE / folder / "templates").rglob("*")
        if path.is_file()
    )
    # The loader takes the first match: a second file of the same name would never be used.
    assert [name for name, count in names.items() if count > 1] == []


def test_the_demo_page_ships_inside_the_package(client):
    # An installed wheel has no examples/ folder: the page must come from the package itself.
    assert PACKAGE in seed.EXAMPLE_PAGE.parents
    site, _bistro = seed.seed(5000)
    response = client.get("/demo/")
    assert response.status_code == 200
    assert f'data-site-key="{site.site_key}"' in response.text
