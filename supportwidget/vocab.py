"""The closed sets of the domain, each defined once with what people read for each value.

Like Django's `TextChoices`: a set is a StrEnum whose members are the stored values and
carry their labels: `label` is the English that staff read; where the requester meets a
value, `requester_label` is a msgid translated from the catalogs. Everything else takes
its values from here: the forms' choices, the API's enums, the dashboard's filters and
lists, the languages, the date patterns. tests/test_vocab.py checks what cannot import
them: the columns are wide enough, the channel registry names each channel, and every
requester label is translated in every language.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from flask_babel import lazy_gettext as _l

#: Screenshots one request may carry: the forms, mail-in and the body size limit use it.
MAX_SCREENSHOTS = 5
#: The usual business week: the agency's default hours, the demo plan's hours.
BUSINESS_WEEK = "mon-fri 09:00-17:30"


def _member(cls: type[Choices], value: str, label: str | None) -> Any:
    """Make one member: its value, and its label (by default the value in words)."""
    member = str.__new__(cls, value)
    member._value_ = value
    member.label = label or value.replace("_", " ")
    return member


class Choices(StrEnum):
    """A closed set of stored text values, each with the English label staff read."""

    label: str

    # A set's own __new__ takes more details; Enum hides this one once a set has members.
    def __new__(cls, value: str, label: str | None = None) -> Self:
        return _member(cls, value, label)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """Return the stored values, in order."""
        return tuple(member.value for member in cls)

    @classmethod
    def width(cls) -> int:
        """Return the length of the longest value: the least a column storing them holds."""
        return max(len(member.value) for member in cls)

    @classmethod
    def lookup(cls, value: str | None) -> Self | None:
        """Return the member stored as a value, or None for a value not in the set."""
        member = cls._value2member_map_.get(value or "")
        return member if isinstance(member, cls) else None

    @classmethod
    def label_of(cls, value: str | None) -> str:
        """Return the staff label of a stored value; an unknown one shows as it is stored."""
        member = cls.lookup(value)
        return value or "" if member is None else member.label

    @classmethod
    def listing(cls) -> str:
        """Return the values for a message: 'standard or emergency', 'a, b or c'."""
        *rest, last = cls.values()
        return f"{', '.join(rest)} or {last}" if rest else last


class TicketStatus(Choices):
    """Where a ticket stands; the open ones are the staff's work queue."""

    requester_label: Any  # a lazy msgid: str() translates it into the current language
    requester_note: Any  # what the requester is asked to do now, or None
    is_open: bool

    def __new__(
        cls, value: str, label: str, requester_label: Any, is_open: bool, note: Any = None
    ) -> Self:
        member = _member(cls, value, label)
        member.requester_label, member.requester_note = requester_label, note
        member.is_open = is_open
        return member

    NEW = "new", "New", _l("New"), True
    IN_PROGRESS = "in_progress", "In progress", _l("In progress"), True
    WAITING_ON_CLIENT = (
        "waiting_on_client",
        "Waiting on client",
        _l("Waiting on you"),
        True,
        _l(
            "We need something from you before we can carry on. "
            "Please reply to this e-mail with the details."
        ),
    )
    RESOLVED = (
        "resolved",
        "Resolved",
        _l("Resolved"),
        False,
        _l(
            "We believe this is sorted. "
            "If anything is still not right, simply reply to this e-mail."
        ),
    )
    CLOSED = (
        "closed",
        "Closed",
        _l("Closed"),
        False,
        _l("This request is closed. For anything new, please open a new request."),
    )

    @classmethod
    def open(cls) -> tuple[TicketStatus, ...]:
        """Return the statuses of work still to do."""
        return tuple(status for status in cls if status.is_open)

    @classmethod
    def finished(cls) -> tuple[TicketStatus, ...]:
        """Return the statuses of work done."""
        return tuple(status for status in cls if not status.is_open)


class QueueScope(Choices):
    """What the work queue's status filter takes besides one status."""

    OPEN = "open", "Open"
    ALL = "all", "All"


#: Every value of the queue's status filter (the API's StatusFilter): a scope or one status.
STATUS_FILTERS: tuple[Choices, ...] = (*QueueScope, *TicketStatus)


class TicketKind(Choices):
    """A standard request, or an emergency that pages the on-call team."""

    STANDARD = "standard", "standard request"
    EMERGENCY = "emergency", "emergency"


class EmergencyCategory(Choices):
    """The only emergencies there are; everything else is a standard request.

    Each asks the requester one question before anyone is paged (`question`); a call to
    staff says what the client reports (`spoken`: "… reports that their website is offline").
    """

    requester_label: Any
    question: Any
    spoken: str

    def __new__(cls, value: str, requester_label: Any, question: Any, spoken: str) -> Self:
        member = _member(cls, value, None)
        member.requester_label, member.question = requester_label, question
        member.spoken = spoken
        return member

    OFFLINE = (
        "offline",
        _l("Website offline / down"),
        _l("Does your site fail to load for you now?"),
        "their website is offline",
    )
    HACKED = (
        "hacked",
        _l("Website seems hacked"),
        _l("What did you see?"),
        "their website seems hacked",
    )
    BROKEN = (
        "broken",
        _l("Main website functionality not working"),
        _l("What can your customers not do?"),
        "their website's main function is broken",
    )


class OfflineAnswer(Choices):
    """The answers to the offline emergency's question (the others are answered in words)."""

    requester_label: Any

    def __new__(cls, value: str, label: str, requester_label: Any) -> Self:
        member = _member(cls, value, label)
        member.requester_label = requester_label
        return member

    YES = "yes", "it does not load for them", _l("Yes, it does not load for me")
    NO = "no", "it loads for them", _l("No, it loads for me")


class EmergencyPhase(Choices):
    """Where an emergency stands, the same on every page, e-mail, SMS and call.

    Never stored: emergencies/state.py reads it from the ticket, and templates ask its
    EmergencyState (`is_paging`, `is_resolved`, `downgrade`) rather than name a phase, which
    is why it is not in CLOSED_SETS ("acknowledged" is also a timeline event's kind there).
    The requester label names who acted as `%(name)s`.
    """

    requester_label: Any

    def __new__(cls, value: str, requester_label: Any) -> Self:
        member = _member(cls, value, None)
        member.requester_label = requester_label
        return member

    PAGING = "paging", _l("filed, on-call team paged")
    ACKNOWLEDGED = "acknowledged", _l("acknowledged by %(name)s")
    DOWNGRADED = "downgraded", _l("made a standard request by %(name)s")
    RESOLVED = "resolved", _l("resolved")


class WatchStatus(Choices):
    """How the uptime watch last found a site (never stored: read from its checks)."""

    UP = "up", "Up"
    DOWN = "down", "Down"
    UNKNOWN = "unknown", "Not checked yet"
    OFF = "off", "Not watched"


class SlaTarget(Choices):
    """What an SLA promises for a standard request (an emergency's response is its first)."""

    FIRST_RESPONSE = "first_response", "First response"
    RESOLUTION = "resolution", "Resolution"


class TriageDecision(Choices):
    """What staff decide about a reported emergency."""

    CONFIRM = "confirm", "Confirm: a true emergency"
    DOWNGRADE = "downgrade", "Downgrade to a standard request"


class StaffRole(Choices):
    """What a staff member may do: admins also manage clients, sites, plans and staff."""

    AGENT = "agent"
    ADMIN = "admin"


class NotificationChannel(Choices):
    """How a notification reaches a person (notify.channels has one channel for each)."""

    EMAIL = "email", "e-mail"
    SMS = "sms", "SMS"
    VOICE = "voice", "call"


class CallOutcome(Choices):
    """How a call to staff ended, kept on the ticket's timeline.

    Ours, not Vonage's: emergencies/calls.py maps Vonage's call statuses onto these.
    """

    ANSWERED = "answered"
    BUSY = "line_busy", "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    VOICEMAIL = "voicemail", "voicemail: hung up"


class NotificationStatus(Choices):
    """Where an outbox row stands: waiting, claimed by a worker, or done for good."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Language(Choices):
    """A language the requester may read: its catalog and its CLDR date patterns.

    To add one: an entry here and its catalog (`pybabel init -l xx`, see README "Languages").
    """

    due_pattern: str  # a due time: "Tue 1 Dec, 13:00"
    day_pattern: str  # a calendar date: "Tue 1 Dec 2026"
    sent_pattern: str  # when something happened: "Tue 1 Dec 2026, 13:00"

    def __new__(cls, value: str, label: str, due: str, day: str, sent: str) -> Self:
        member = _member(cls, value, label)
        member.due_pattern, member.day_pattern, member.sent_pattern = due, day, sent
        return member

    # English keeps the house style "Tue 1 Dec, 13:00".
    EN = "en", "English", "EEE d MMM, HH:mm", "EEE d MMM y", "EEE d MMM y, HH:mm"
    FR = "fr", "French", "EEE d MMM, HH:mm", "EEE d MMM y", "EEE d MMM y, HH:mm"
    DE = "de", "German", "EEE, d. MMM, HH:mm", "EEE, d. MMM y", "EEE, d. MMM y, HH:mm"
    ES = "es", "Spanish", "EEE d MMM, HH:mm", "EEE d MMM y", "EEE d MMM y, HH:mm"


#: What the requester reads without a choice of their own, and what staff always read.
DEFAULT_LANGUAGE = Language.EN

#: Every closed set, for templates (by class name) and for the tests that check the rest.
CLOSED_SETS: tuple[type[Choices], ...] = (
    TicketStatus,
    QueueScope,
    TicketKind,
    EmergencyCategory,
    OfflineAnswer,
    WatchStatus,
    SlaTarget,
    TriageDecision,
    StaffRole,
    NotificationChannel,
    CallOutcome,
    NotificationStatus,
    Language,
)
