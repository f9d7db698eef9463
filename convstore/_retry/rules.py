"""User rules: the classification a user gives to errors that match their criteria."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field

from convstore._records import ErrorType
from convstore._retry.backoff import BackoffConfig
from convstore._retry.evidence import as_status, message_of, status_of
from convstore.exceptions import InvalidArgument


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """A user rule: errors matching every given criterion get ``error_type`` and ``backoff``.

    ``exception`` matches by isinstance, ``status`` by the HTTP status read as the built-ins read
    it, ``message`` by `re.search` on the message (a str pattern is compiled case-insensitively).
    ``backoff=None`` means the classifier's default backoff.
    """

    error_type: ErrorType
    backoff: BackoffConfig | None = None
    exception: type[BaseException] | tuple[type[BaseException], ...] | None = None
    status: int | Collection[int] | None = None
    message: str | re.Pattern[str] | None = None
    name: str | None = None
    #: Whether these errors are a rate limit or an overload that every call of the same
    #: ``limit_key`` should wait out (`RetryExecutor`'s shared cooldowns).
    cooldown: bool = False
    _statuses: frozenset[int] | None = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "error_type", ErrorType(self.error_type))
        except ValueError:
            raise InvalidArgument(
                f"error_type must be one of {[t.value for t in ErrorType]}, got {self.error_type!r}"
            ) from None
        if not isinstance(self.cooldown, bool):
            raise InvalidArgument(f"cooldown must be a bool, got {self.cooldown!r}")
        if self.backoff is not None and not isinstance(self.backoff, BackoffConfig):
            raise InvalidArgument(f"backoff must be a BackoffConfig or None, got {self.backoff!r}")
        if self.exception is None and self.status is None and self.message is None:
            raise InvalidArgument("an ErrorRule needs at least one of exception, status, message")
        if self.exception is not None and not _is_exception_spec(self.exception):
            raise InvalidArgument(
                f"exception must be an exception class or a tuple of them, got {self.exception!r}"
            )
        statuses = _status_set(self.status)
        if statuses is not None and not isinstance(self.status, int):
            # Kept as a sorted tuple so that rules stay hashable and print the same way each time.
            object.__setattr__(self, "status", tuple(sorted(statuses)))
        object.__setattr__(self, "_statuses", statuses)
        object.__setattr__(self, "_pattern", _compile(self.message))

    def matches(self, error: BaseException) -> bool:
        """Return True when ``error`` itself (not its causes) meets every criterion of the rule."""
        if self.exception is not None and not isinstance(error, self.exception):
            return False
        if self._statuses is not None and status_of(error) not in self._statuses:
            return False
        return self._pattern is None or self._pattern.search(message_of(error)) is not None

    @property
    def label(self) -> str:
        """The rule's name, or a description built from its criteria."""
        if self.name:
            return self.name
        parts = []
        if self.exception is not None:
            classes = self.exception if isinstance(self.exception, tuple) else (self.exception,)
            parts.append("exception=" + "|".join(c.__qualname__ for c in classes))
        if self._statuses is not None:
            parts.append("status=" + "|".join(str(s) for s in sorted(self._statuses)))
        if self._pattern is not None:
            parts.append(f"message=/{self._pattern.pattern}/")
        return " ".join(parts)


def _is_exception_spec(spec: object) -> bool:
    """Return True for an exception class or a non-empty tuple of them."""
    classes = spec if isinstance(spec, tuple) else (spec,)
    return bool(classes) and all(
        isinstance(c, type) and issubclass(c, BaseException) for c in classes
    )


def _status_set(status: int | Collection[int] | None) -> frozenset[int] | None:
    """Return the rule's statuses as a set, rejecting anything that is not an HTTP status."""
    if status is None:
        return None
    statuses = (status,) if isinstance(status, int) else tuple(status)
    if not statuses or not all(as_status(s) is not None for s in statuses):
        raise InvalidArgument(f"status must be HTTP status codes within 100-599, got {status!r}")
    return frozenset(int(s) for s in statuses)


def _compile(message: str | re.Pattern[str] | None) -> re.Pattern[str] | None:
    """Compile a str pattern case-insensitively; keep a compiled pattern as given."""
    if message is None or isinstance(message, re.Pattern):
        return message
    if not isinstance(message, str):
        raise InvalidArgument(f"message must be a regex str or re.Pattern, got {message!r}")
    try:
        return re.compile(message, re.IGNORECASE)
    except re.error as exc:
        raise InvalidArgument(f"message is not a valid regular expression: {exc}") from exc
