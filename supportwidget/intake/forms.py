"""Hosted request forms: fields, validation, and a cookie-free form token."""

from __future__ import annotations

import functools
import json
from datetime import date, timedelta
from typing import Any

from babel import support
from flask import current_app, request
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    MultipleFileField,
    RadioField,
    StringField,
    TextAreaField,
)
from wtforms.csrf.core import CSRF
from wtforms.fields import SelectChoice
from wtforms.i18n import messages_path
from wtforms.validators import (
    DataRequired,
    Email,
    Length,
    Optional,
    StopValidation,
    ValidationError,
)

from supportwidget.models import utcnow
from supportwidget.platform import kept, plaintext, tokens
from supportwidget.platform.screenshots import (
    Screenshot,
    Upload,
    clean_uploads,
    screen_uploads,
)
from supportwidget.vocab import MAX_SCREENSHOTS, EmergencyCategory, OfflineAnswer

MAX_PAGE_META = 8192
CATEGORIES = [SelectChoice(c.value, c.requester_label) for c in EmergencyCategory]
OFFLINE_ANSWERS = [SelectChoice(a.value, a.requester_label) for a in OfflineAnswer]


class SiteFormToken(CSRF):
    """Stateless, signed, expiring token bound to the site key.

    Inside an iframe on the client's site the browser blocks or partitions our
    cookies, so the token must not depend on a session.
    """

    def setup_form(self, form: Any) -> Any:
        self.site_key = form.meta.csrf_context
        return super().setup_form(form)

    def generate_csrf_token(self, csrf_token_field: Any) -> str:
        return tokens.form_token(self.site_key)

    def validate_csrf_token(self, form: Any, field: Any) -> None:
        try:
            form.nonce = tokens.read_form_token(field.data or "", self.site_key)
        except tokens.TokenError as exc:
            raise ValidationError(str(exc)) from exc
        # Sent back with an error, the page keeps this token: its screenshots are kept under it.
        field.current_token = field.data


def not_in_the_past(form: Any, field: Any) -> None:
    """Refuse dates already past everywhere on earth (UTC-12)."""
    earliest_today = (utcnow() - timedelta(hours=12)).date()
    if field.data and field.data < earliest_today:
        raise ValidationError(gettext("The date can't be in the past."))


def one_line_only(form: Any, field: Any) -> None:
    """Refuse line breaks and control characters in a field that lands in a header or line."""
    if field.data and not plaintext.is_one_line(field.data):
        raise ValidationError(
            gettext("Please write this on one line, without line breaks or control characters.")
        )


def valid_page_meta(form: Any, field: Any) -> None:
    """Accept only a small JSON object from the widget."""
    if not field.data:
        return
    if len(field.data) > MAX_PAGE_META:
        raise ValidationError(gettext("Page details are too large."))
    try:
        value = json.loads(field.data)
    except (ValueError, RecursionError) as exc:  # RecursionError: "[[[[…" nested thousands deep
        raise ValidationError(gettext("Page details are not valid JSON.")) from exc
    if not isinstance(value, dict):
        raise ValidationError(gettext("Page details must be an object."))


@functools.cache
def wtforms_catalog(language: str) -> support.NullTranslations:
    """Load WTForms' message catalog for a language (Flask-WTF reloads it on every request)."""
    return support.Translations.load(messages_path(), [language], domain="wtforms")


class RequestForm(FlaskForm):
    """Fields shared by the standard and the emergency form."""

    class Meta:
        csrf = True
        csrf_class = SiteFormToken
        csrf_field_name = "form_token"

        def get_translations(self, form: Any) -> Any:
            """Return WTForms' own messages in the page's language, loaded once per language."""
            return wtforms_catalog(str(get_locale()))

    subject = StringField(
        _l("Subject"),
        validators=[
            DataRequired(_l("Please give a short subject.")),
            Length(3, 150),
            one_line_only,
        ],
    )
    description = TextAreaField(
        _l("Description"),
        validators=[DataRequired(_l("Please describe the problem.")), Length(10, 20_000)],
    )
    name = StringField(
        _l("Your name"),
        validators=[DataRequired(_l("Please give your name.")), Length(max=120), one_line_only],
    )
    email = EmailField(
        _l("Your e-mail"),
        validators=[
            DataRequired(_l("Please give your e-mail address.")),
            Email(_l("Please give a valid e-mail address."), check_deliverability=False),
            Length(max=254),
        ],
    )
    screenshots = MultipleFileField(_l("Screenshots"))
    page_meta = HiddenField(validators=[valid_page_meta])

    def __init__(self, site_key: str, **kwargs: Any) -> None:
        super().__init__(meta={"csrf_context": site_key}, **kwargs)
        self.nonce: str | None = None
        self.new_uploads: list[Upload] = []
        self.uploads: list[Upload] = []
        self.kept: list[kept.Kept] = []
        self.cleaned_screenshots: list[Screenshot] = []

    def validate_screenshots(self, field: Any) -> None:
        """Read the newly attached files (each at most one byte over the limit); judge later."""
        limit = current_app.config["MAX_SCREENSHOT_BYTES"]
        files = [f for f in (field.data or []) if getattr(f, "filename", "")]
        self.new_uploads = [Upload.named(f.filename, f.stream.read(limit + 1)) for f in files]

    def validate(self, extra_validators: Any = None) -> bool:
        """Check the token and every field first; decode screenshots only for a valid request.

        Decoding is the costly part (seconds and hundreds of MB for a large image), so a
        request with a bad token or a missing field never gets that far. Raises Busy when
        no decoding slot frees up in time.
        """
        valid = super().validate(extra_validators)
        valid = self.screen_screenshots() and valid
        if not valid:
            return False
        config = current_app.config
        self.cleaned_screenshots, problems = clean_uploads(
            self.uploads, config["MAX_SCREENSHOT_BYTES"], config["MAX_PIXELS_PER_REQUEST"]
        )
        self.screenshots.errors.extend(problems)
        return not problems

    def screen_screenshots(self) -> bool:
        """Check the kept and new screenshots together: count, sizes, formats, pixels."""
        config = current_app.config
        dropped = frozenset(request.form.getlist("drop_kept"))
        earlier = kept.load(config["UPLOAD_FOLDER"], self.nonce, dropped) if self.nonce else []
        uploads = [k.upload for k in earlier] + self.new_uploads
        self.uploads, problems = screen_uploads(
            uploads, config["MAX_SCREENSHOT_BYTES"], config["MAX_PIXELS_PER_REQUEST"]
        )
        if len(uploads) > MAX_SCREENSHOTS:
            problems.insert(0, too_many_screenshots(len(uploads)))
        self.screenshots.errors = list(self.screenshots.errors) + problems
        return not problems

    def keep_screenshots(self) -> None:
        """Keep the acceptable screenshots of a refused request, to be shown and sent again."""
        if self.nonce:
            self.kept = kept.keep(current_app.config["UPLOAD_FOLDER"], self.nonce, self.uploads)

    def forget_screenshots(self) -> None:
        """Drop the kept copies once the request is filed (its own copies are stored)."""
        kept.forget(current_app.config["UPLOAD_FOLDER"], self.nonce)

    def page_details(self) -> dict[str, Any]:
        """Return the widget's page metadata as a dict, each text on one line.

        Staff e-mail shows it one "key: value" per line: a line break in a value could
        fake lines there (an "acknowledge" link of the sender's choosing).
        """
        return (
            plaintext.one_line_json(json.loads(self.page_meta.data)) if self.page_meta.data else {}
        )


class ReplyForm(RequestForm):
    """The requester's answer on their status page: text and screenshots.

    Its token is bound to the ticket, not a site: a form from one status page cannot post
    to another, and its nonce makes a double submission one reply.
    """

    subject = None
    description = None
    name = None
    email = None
    page_meta = None
    body = TextAreaField(
        _l("Your reply"),
        validators=[DataRequired(_l("Please write your reply.")), Length(max=20_000)],
    )

    def __init__(self, ticket_id: int, **kwargs: Any) -> None:
        super().__init__(f"ticket:{ticket_id}", **kwargs)


class StandardRequestForm(RequestForm):
    needed_by = DateField(_l("Needed by (optional)"), validators=[Optional(), not_in_the_past])
    urgency_note = StringField(
        _l("Why by then? (optional)"), validators=[Optional(), Length(max=500), one_line_only]
    )


def answered_if(category: EmergencyCategory) -> Any:
    """Require a category's question to be answered when that category is chosen."""

    def check(form: Any, field: Any) -> None:
        if form.category.data == category and not (field.data or "").strip():
            # StopValidation: Optional() after this would clear a plain ValidationError.
            raise StopValidation(
                gettext("Please answer this question: it tells the on-call team where to start.")
            )

    return check


def worded_answer(category: EmergencyCategory) -> Any:
    """Return the field answering a category's question in the requester's own words."""
    return StringField(
        category.question,
        validators=[answered_if(category), Optional(), Length(max=500), one_line_only],
    )


class EmergencyForm(RequestForm):
    category = RadioField(
        _l("What is happening?"),
        choices=CATEGORIES,
        validators=[DataRequired(_l("Please choose what is happening."))],
    )
    # One question per category, asked before anyone is paged; only the chosen one counts.
    offline_answer = RadioField(
        EmergencyCategory.OFFLINE.question,
        choices=OFFLINE_ANSWERS,
        validators=[answered_if(EmergencyCategory.OFFLINE), Optional()],
        validate_choice=False,
    )
    hacked_answer = worded_answer(EmergencyCategory.HACKED)
    broken_answer = worded_answer(EmergencyCategory.BROKEN)
    callback_phone = StringField(
        _l("Call-back phone (optional)"), validators=[Optional(), Length(max=40), one_line_only]
    )
    billing_consent = BooleanField(_l("I understand and agree"))

    def __init__(self, site_key: str, needs_consent: bool, **kwargs: Any) -> None:
        super().__init__(site_key, **kwargs)
        self.needs_consent = needs_consent

    def category_answer(self) -> str | None:
        """Return the answer to the chosen category's question."""
        field = getattr(self, f"{self.category.data}_answer", None)
        return ((field.data or "").strip() or None) if field is not None else None

    def validate_offline_answer(self, field: Any) -> None:
        """Accept only the two answers offered (any answer, when offline was not chosen)."""
        offline = self.category.data == EmergencyCategory.OFFLINE
        if offline and OfflineAnswer.lookup(field.data) is None:
            raise ValidationError(gettext("Please answer this question: yes or no."))

    def validate_billing_consent(self, field: Any) -> None:
        """Require consent to the emergency rate from clients without an SLA."""
        if self.needs_consent and not field.data:
            raise ValidationError(gettext("Please confirm you accept the emergency rate."))


def too_many_screenshots(count: int) -> str:
    """Explain how many screenshots were attached and how many one request may have."""
    return gettext(
        "You attached %(count)s screenshots; one request may have at most %(max)s. "
        "Please remove %(extra)s.",
        count=count,
        max=MAX_SCREENSHOTS,
        extra=count - MAX_SCREENSHOTS,
    )


def form_strings() -> dict[str, str]:
    """Return form.js's messages in the current language; '{name}' marks a file name."""
    return dict(_form_strings(str(get_locale())))


@functools.lru_cache(maxsize=32)
def _form_strings(locale: str) -> dict[str, str]:
    # Translated once per locale and process, not on every form page (21 look-ups each).
    name = "{name}"
    return {
        "coverIn": gettext("Cover private details in %(name)s", name=name),
        "remove": gettext("Remove"),
        "removeFile": gettext("Remove %(name)s", name=name),
        "notImage": gettext(
            "%(name)s is not an image. Please attach PNG, JPEG, WebP or GIF files.", name=name
        ),
        "tooMany": gettext("Please attach at most %(count)s screenshots.", count=MAX_SCREENSHOTS),
        "tooLarge": gettext(
            "%(name)s is larger than %(size)s MB.",
            name=name,
            size=current_app.config["MAX_SCREENSHOT_BYTES"] // (1024 * 1024),
        ),
        "dropHint": gettext("You can also paste or drop images here."),
        "unreadable": gettext("%(name)s could not be read as an image.", name=name),
        "coverTitle": gettext("Cover private details"),
        "coverHint": gettext(
            "Drag across names, e-mail addresses or numbers to cover them with a black box. "
            "Only the covered image is sent."
        ),
        "canvas": gettext("Screenshot with the boxes drawn so far"),
        "undo": gettext("Undo last box"),
        "cancel": gettext("Cancel"),
        "done": gettext("Done"),
        "coveredTooLarge": gettext(
            "%(name)s is too large once covered. Please crop it first.", name=name
        ),
        "captureFailed": gettext("This page could not be captured."),
        "capture": gettext("Capture this page"),
        "sendFailed": gettext(
            "Your request could not be sent. Please check your connection and try again."
        ),
        "verified": gettext("Signed in as %(name)s (verified)", name=name),
        "mine": gettext("Your recent requests"),
    }


def today() -> date:
    """Return today's UTC date."""
    return utcnow().date()
