"""Reading the pages' forms: amounts in major units, local dates and times, and the API's own
request models, so a form accepts exactly what the JSON API accepts.

Every problem is a `FormError` naming the field and saying what is wrong in plain words; the
page shows it beside the form and nothing changes.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from adledger.domain.errors import InvalidInput
from adledger.domain.money import currency_exponent, parse_money

M = TypeVar("M", bound=BaseModel)


class FormError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def text(form: dict[str, str], name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


def amount(form: dict[str, str], name: str, currency: str, label: str) -> int:
    """An amount typed in major units ("12.50", "$1,000") as minor units of `currency`."""
    raw = form.get(name, "").strip()
    if not raw:
        raise FormError(name, f"Enter the {label}.")
    try:
        value = parse_money(raw, currency)
    except InvalidInput:
        places = currency_exponent(currency)
        example = "100" if places == 0 else "100." + "0" * places
        raise FormError(
            name, f"“{raw}” is not an amount in {currency}; write it like {example}."
        ) from None
    if value <= 0:
        raise FormError(name, f"The {label} must be more than zero.")
    return value


def optional_amount(form: dict[str, str], name: str, currency: str, label: str) -> int | None:
    return amount(form, name, currency, label) if text(form, name) else None


def integer(
    form: dict[str, str], name: str, label: str, *, default: int | None = None
) -> int | None:
    raw = form.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise FormError(name, f"The {label} must be a whole number.")
    return int(raw)


def local_date(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FormError(name, f"“{raw}” is not a date; use the form YYYY-MM-DD.") from None


def local_datetime(form: dict[str, str], name: str, timezone: str, label: str) -> datetime:
    """A `datetime-local` field (or a bare date: its midnight) read in `timezone`."""
    raw = form.get(name, "").strip()
    if not raw:
        raise FormError(name, f"Enter the {label}.")
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise FormError(name, f"“{raw}” is not a date and time.") from None
    if value.tzinfo is not None:
        return value
    return value.replace(tzinfo=ZoneInfo(timezone))


def day_range(
    since: date | None, until: date | None, timezone: str
) -> tuple[datetime | None, datetime | None]:
    """The instants of a range of whole local days, `until` included."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(since, time(0), tz) if since else None
    end = datetime.combine(until + timedelta(days=1), time(0), tz) if until else None
    if start and end and end <= start:
        raise FormError(field="until", message="The end date is before the start date.")
    return start, end


def validated(model: type[M], **values: Any) -> M:
    """The API's request model of these values; its first complaint as a `FormError`."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "form"
        raise FormError(field, _plain(field, first.get("msg", "is not valid"))) from None


def _plain(field: str, message: str) -> str:
    name = field.replace("_", " ").replace(".", " ")
    message = message.removeprefix("Value error, ")
    return f"{name[:1].upper()}{name[1:]}: {message[:1].lower()}{message[1:]}."
