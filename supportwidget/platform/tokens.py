"""Signed tokens: hosted-form tokens, requester status links, acknowledgement links."""

from __future__ import annotations

import secrets

from flask import current_app
from flask_babel import gettext
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer


class TokenError(ValueError):
    """A token that is missing, forged, expired or for something else."""


def _timed(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def form_token(site_key: str) -> str:
    """Return a fresh form token bound to a site; its nonce makes the submission idempotent."""
    return _timed("form").dumps({"site": site_key, "nonce": secrets.token_urlsafe(16)})


def read_form_token(token: str, site_key: str) -> str:
    """Return the nonce of a valid form token for this site, or raise TokenError."""
    try:
        data = _timed("form").loads(token, max_age=current_app.config["FORM_TOKEN_MAX_AGE"])
    except SignatureExpired as exc:
        raise TokenError(
            gettext("This form has expired. Please reload the page and submit again.")
        ) from exc
    except BadSignature as exc:
        raise TokenError(
            gettext("This form's security token is invalid. Please reload the page.")
        ) from exc
    if data.get("site") != site_key:
        raise TokenError(gettext("This form's security token belongs to another site."))
    return str(data["nonce"])


def status_token(ticket_id: int) -> str:
    """Return the requester's unguessable, non-expiring status token for a ticket."""
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="status").dumps(ticket_id)


def read_status_token(token: str) -> int:
    """Return the ticket id of a status token, or raise TokenError."""
    try:
        return int(URLSafeSerializer(current_app.config["SECRET_KEY"], salt="status").loads(token))
    except (BadSignature, ValueError, TypeError) as exc:
        raise TokenError(gettext("This status link is not valid.")) from exc
