"""What an API failure means: retry it, give up, shorten the prompt, or call a person.

Evidence is read from the strongest to the weakest, and the first that speaks decides:

1. the user's `ErrorRule`s, in order, on the error and then on each exception of its cause chain;
2. on the error, then on each cause in turn (outermost first):

   a. the quota / billing signals (FATAL: HTTP 402, ``insufficient_quota``, ``billing_error``,
      "credit balance is too low") and then the prompt-too-long ones (DEGRADED: HTTP 413,
      ``context_length_exceeded``, "prompt is too long"), which win over the status they come with;
   b. the HTTP status (``status_code``, ``status``, ``http_status``, ``response.status_code``,
      ``response.status``), if it is 400 or more;
   c. the provider's error type or code (``type``, ``code``, ``body["error"]["type"|"code"]``,
      ``body["type"|"code"]``);
   d. the exception class;

3. the message text of the error and then of its causes, on word boundaries, case-insensitively;
4. otherwise: retryable with the default backoff.

The evidence is read in `evidence`, the built-in knowledge is in `tables`, user rules in `rules`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convstore._records import ErrorType
from convstore._retry.backoff import POLICIES, BackoffConfig, Policy, RandomSource, compute_delay
from convstore._retry.evidence import (
    Evidence,
    cause_chain,
    message_of,
    provider_codes,
    qualified_name,
    status_of,
)
from convstore._retry.retry_after import retry_after_of
from convstore._retry.rules import ErrorRule
from convstore._retry.tables import TEXT_RULES, Verdict, from_structure, from_text
from convstore.exceptions import InvalidArgument

if TYPE_CHECKING:
    from datetime import datetime


#: The policies of errors that a whole rate limit shares: 429, 529 and 503, by any evidence.
_COOLDOWN_POLICIES = frozenset({Policy.RATE_LIMIT, Policy.SERVICE_UNAVAILABLE})


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """Why an error was classified so: the verdict, the evidence that decided, and what was seen."""

    #: The verdict.
    error_type: ErrorType
    #: The backoff to use when retrying (the default backoff for errors that are not retried).
    backoff: BackoffConfig
    #: The kind of evidence that decided.
    evidence: Evidence
    #: The built-in policy that supplied ``backoff``; None when not retryable or a rule decided.
    policy: Policy | None
    #: The user rule that decided, if one did.
    rule: ErrorRule | None
    #: The HTTP status carried by the error or, failing that, its nearest cause.
    status_code: int | None
    #: The provider's error type/code that decided, or else the first one seen.
    provider_code: str | None
    #: Module-qualified class of the exception that decided (the error itself or a cause).
    exception_class: str
    #: Where in the chain the deciding exception sits: 0 is the error, 1 its cause, and so on.
    cause_depth: int
    #: The regular expression that matched, when message text decided.
    message_pattern: str | None
    #: What the server's ``retry-after-ms`` / ``Retry-After`` asked for, in seconds.
    retry_after_s: float | None

    @property
    def cooldown(self) -> bool:
        """Whether the error is a rate limit or an overload, which every call sharing its limit
        should wait out: the rate-limit and service-unavailable policies, or a rule saying so."""
        if self.rule is not None:
            return self.rule.cooldown
        return self.error_type is ErrorType.RETRYABLE and self.policy in _COOLDOWN_POLICIES

    @property
    def reason(self) -> str:
        """One line for people: ``retryable (rate_limit): HTTP status 429 on x.RateLimitError``."""
        verdict = self.error_type.value
        if self.policy is not None:
            verdict += f" ({self.policy.value})"
        if self.evidence is Evidence.RULE and self.rule is not None:
            because = f"rule {self.rule.label!r}"
        elif self.evidence is Evidence.STATUS:
            because = f"HTTP status {self.status_code}"
        elif self.evidence is Evidence.PROVIDER_CODE:
            because = f"provider code {self.provider_code!r}"
        elif self.evidence is Evidence.EXCEPTION_CLASS:
            because = "exception class"
        elif self.evidence is Evidence.MESSAGE:
            because = f"message matched /{self.message_pattern}/"
        else:
            because = "nothing recognised, default"
        text = f"{verdict}: {because} on {self.exception_class}"
        if self.cause_depth:
            text += f" (cause depth {self.cause_depth})"
        if self.retry_after_s is not None:
            text += f"; server asked to wait {self.retry_after_s:g} s"
        return text

    def __str__(self) -> str:
        return self.reason


class ErrorClassifier:
    """Decides what an error means (`classify`, `explain`) and how long to wait before retrying."""

    def __init__(
        self,
        default_backoff: BackoffConfig | None = None,
        rules: Iterable[ErrorRule] = (),
        *,
        rand: RandomSource | None = None,
    ) -> None:
        """Use ``default_backoff`` for unrecognised errors, try ``rules`` before the built-ins.

        ``rand`` replaces `random.random` as the jitter source, so tests can assert exact delays.
        """
        if default_backoff is not None and not isinstance(default_backoff, BackoffConfig):
            raise InvalidArgument(
                f"default_backoff must be a BackoffConfig or None, got {default_backoff!r}"
            )
        self.default_backoff = default_backoff if default_backoff is not None else BackoffConfig()
        self.rules: tuple[ErrorRule, ...] = tuple(rules)
        for rule in self.rules:
            if not isinstance(rule, ErrorRule):
                raise InvalidArgument(f"rules must be ErrorRule instances, got {rule!r}")
        self._rand = rand

    def __repr__(self) -> str:
        return f"ErrorClassifier(default_backoff={self.default_backoff!r}, rules={self.rules!r})"

    def classify(self, error: BaseException) -> tuple[ErrorType, BackoffConfig]:
        """Return what ``error`` means and the backoff to use if it is retried."""
        explanation = self.explain(error)
        return explanation.error_type, explanation.backoff

    def compute_delay(self, attempt: int, backoff: BackoffConfig) -> float:
        """Return the seconds to wait after failed attempt ``attempt`` (0-based), never negative."""
        if self._rand is None:
            return compute_delay(attempt, backoff)
        return compute_delay(attempt, backoff, rand=self._rand)

    def explain(self, error: BaseException, *, now: datetime | None = None) -> Explanation:
        """Return the classification of ``error`` with the evidence that decided it.

        ``now`` is the time against which an HTTP-date ``Retry-After`` is measured.
        """
        chain = list(cause_chain(error))
        status = next((s for s in map(status_of, chain) if s is not None), None)
        retry_after = next(
            (s for s in (retry_after_of(e, now=now) for e in chain) if s is not None), None
        )
        first_code = next((c for e in chain for c in provider_codes(e)), None)

        def build(verdict: Verdict, depth: int, rule: ErrorRule | None = None) -> Explanation:
            if rule is not None:
                backoff = rule.backoff or self.default_backoff
            elif verdict.policy is None or verdict.policy is Policy.DEFAULT:
                backoff = self.default_backoff
            else:
                backoff = POLICIES[verdict.policy]
            return Explanation(
                error_type=verdict.error_type,
                backoff=backoff,
                evidence=verdict.evidence,
                policy=verdict.policy,
                rule=rule,
                status_code=status,
                provider_code=verdict.provider_code or first_code,
                exception_class=qualified_name(type(chain[depth])),
                cause_depth=depth,
                message_pattern=verdict.pattern,
                retry_after_s=retry_after,
            )

        if not isinstance(error, Exception):
            # Cancellation, KeyboardInterrupt, SystemExit: never retried, whatever a rule says.
            return build(Verdict(ErrorType.NON_RETRYABLE, None, Evidence.EXCEPTION_CLASS), 0)
        for depth, exc in enumerate(chain):
            for rule in self.rules:
                if rule.matches(exc):
                    return build(Verdict(rule.error_type, None, Evidence.RULE), depth, rule)
        for depth, exc in enumerate(chain):
            verdict = from_structure(exc)
            if verdict is not None:
                return build(verdict, depth)
        for depth, exc in enumerate(chain):
            verdict = from_text(message_of(exc), TEXT_RULES)
            if verdict is not None:
                return build(verdict, depth)
        return build(Verdict(ErrorType.RETRYABLE, Policy.DEFAULT, Evidence.DEFAULT), 0)


def classifier_or_default(classifier: ErrorClassifier | None) -> ErrorClassifier:
    """`classifier`, checked, or a default `ErrorClassifier` when None."""
    if classifier is None:
        return ErrorClassifier()
    if not isinstance(classifier, ErrorClassifier):
        raise InvalidArgument(f"classifier must be an ErrorClassifier, not {classifier!r}")
    return classifier
