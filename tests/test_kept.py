"""Screenshots survive a refused submission without JavaScript: kept, shown, removable, sent."""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

from PIL import Image

from supportwidget.models import Ticket, db
from supportwidget.platform import kept
from supportwidget.worker import PERIODIC

from conftest import form_token, standard_fields


def png(colour: tuple[int, int, int]) -> io.BytesIO:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, format="PNG")
    out.seek(0)
    return out


def post(client, site, data, files=()):
    body = {**data, "screenshots": list(files)}
    return client.post(f"/s/{site.site_key}", data=body, content_type="multipart/form-data")


def kept_ids(page: str) -> list[str]:
    return re.findall(r'name="drop_kept" value="([0-9a-f]+)"', page)


def test_screenshots_survive_a_refused_submission_and_are_sent_with_the_next(client, site):
    token = form_token(client, f"/s/{site.site_key}")
    data = standard_fields(email="not an address", form_token=token)
    shots = [(png((200, 0, 0)), "red.png"), (png((0, 200, 0)), "green.png")]
    refused = post(client, site, data, shots)
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "red.png" in page and "green.png" in page
    ids = kept_ids(page)
    assert len(ids) == 2
    # The same token comes back, so the kept screenshots stay tied to it.
    assert f'value="{token}"' in page
    thumb = re.search(r'<img src="([^"]+/kept/[^"]+)"', page).group(1).replace("&amp;", "&")
    image = client.get(thumb)
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get(thumb.replace("token=", "token=x")).status_code == 404

    # Fixed, with one kept screenshot removed and nothing new attached.
    fixed = dict(data, email="jane@example.com", drop_kept=ids[1])
    answer = post(client, site, fixed)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    ticket = db.session.query(Ticket).one()
    assert [a.filename for a in ticket.attachments] == ["red.png"]
    # Filed: the kept copies are gone.
    assert client.get(thumb).status_code == 404


def test_kept_and_new_screenshots_count_together(client, site):
    token = form_token(client, f"/s/{site.site_key}")
    data = standard_fields(email="nope", form_token=token)
    first = post(client, site, data, [(png((i, 0, 0)), f"a{i}.png") for i in range(4)])
    assert len(kept_ids(first.get_data(as_text=True))) == 4
    second = post(client, site, data, [(png((0, i, 0)), f"b{i}.png") for i in range(3)])
    page = second.get_data(as_text=True)
    assert "You attached 7 screenshots; one request may have at most 5. Please remove 2." in page
    # Nothing lost even then: all seven stay, for the requester to choose.
    assert len(kept_ids(page)) == 7


def test_the_periodic_job_prunes_kept_screenshots_of_expired_forms(app, client, site):
    token = form_token(client, f"/s/{site.site_key}")
    post(client, site, standard_fields(email="nope", form_token=token), [(png((1, 2, 3)), "a.png")])
    base = Path(app.config["UPLOAD_FOLDER"], kept.KEPT)
    (folder,) = list(base.iterdir())
    assert "prune_kept" in PERIODIC
    PERIODIC["prune_kept"]()
    assert folder.exists()  # still within the form token's life
    old = time.time() - app.config["FORM_TOKEN_MAX_AGE"] - 60
    os.utime(folder, (old, old))
    PERIODIC["prune_kept"]()
    assert not folder.exists()


def test_the_form_states_its_limits_in_the_page_language(client, site):
    page = client.get(f"/s/{site.site_key}?locale=fr").get_data(as_text=True)
    assert "PNG, JPEG, WebP ou GIF, 10 Mo au plus chacune." in page
    # form.js's own messages say the size limit too, and only it claims paste and drop.
    config = json.loads(re.search(r'id="sw-config">(.*?)</script>', page).group(1))
    assert config["strings"]["tooLarge"] == "{name} dépasse 10 Mo."
    assert "coller ou déposer" not in page.split('id="sw-config"')[0]
