"""Every error adledger raises on purpose, each with a stable snake_case `code`.

One root, `AdledgerError`, and a handful of families that say how the caller went wrong:
`InvalidInput` (the request itself is bad), `NotFound`, `Conflict` (the request is well formed but
the ledger's state refuses it), `Forbidden`, `Unauthorized` and `RateLimited`. The HTTP status and
the CLI exit code are chosen once, at the edge, from the family.

`extra` carries machine-readable details that go into the problem document beside `detail`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AdledgerError(Exception):
    """Root of every deliberate adledger error."""

    code: str = "error"
    title: ClassVar[str] = "Error"

    def __init__(self, detail: str = "", *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code  # a more precise code than the class's, e.g. "invalid_timezone"
        self.extra = extra


# --- families ---------------------------------------------------------------------------------


class InvalidInput(AdledgerError):
    """The request is malformed or out of range; nothing was changed."""

    code = "validation_error"
    title = "Invalid request"


class NotFound(AdledgerError):
    """The object does not exist, or the caller may not know that it exists."""

    code = "not_found"
    title = "Not found"


class Conflict(AdledgerError):
    """The request is well formed but the ledger's current state refuses it."""

    code = "conflict"
    title = "Conflict"


class Forbidden(AdledgerError):
    """The caller's key lacks the right for this operation."""

    code = "forbidden"
    title = "Forbidden"


class Unauthorized(AdledgerError):
    """No API key, an unknown key or a revoked key."""

    code = "unauthorized"
    title = "Unauthorized"


class RateLimited(AdledgerError):
    """Too many attempts in a window."""

    code = "too_many_attempts"
    title = "Too many attempts"


# --- invalid input ----------------------------------------------------------------------------


class InvalidAmount(InvalidInput):
    """An amount that is not an integer in (0, 10^15] minor units."""

    code = "invalid_amount"
    title = "Invalid amount"


class UnknownCurrency(InvalidInput):
    """A currency that is not an ISO 4217 code."""

    code = "unknown_currency"
    title = "Unknown currency"


class InvalidTime(InvalidInput):
    """A time without an explicit UTC offset, or a window that ends before it starts."""

    code = "invalid_time"
    title = "Invalid time"


class AsOfInFuture(InvalidInput):
    """An expiry run asked to look into the future."""

    code = "as_of_in_future"
    title = "as_of is in the future"


class CurrencyMismatch(InvalidInput):
    """Two amounts of different currencies were combined."""

    code = "currency_mismatch"
    title = "Currency mismatch"


class IdempotencyKeyReused(InvalidInput):
    """An Idempotency-Key was sent again with a different request body."""

    code = "idempotency_key_reused"
    title = "Idempotency key reused with a different request"


class UnbalancedTransaction(InvalidInput):
    """A ledger transaction whose legs do not sum to zero (a programming error)."""

    code = "unbalanced_transaction"
    title = "Unbalanced transaction"


# --- not found --------------------------------------------------------------------------------


class AccountNotFound(NotFound):
    code = "account_not_found"
    title = "Account not found"


class BusinessNotFound(NotFound):
    code = "business_not_found"
    title = "Business not found"


class LotNotFound(NotFound):
    code = "lot_not_found"
    title = "Credit lot not found"


class DepositNotFound(NotFound):
    code = "deposit_not_found"
    title = "Deposit not found"


class RefundNotFound(NotFound):
    code = "refund_not_found"
    title = "Refund not found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "API key not found"


class PromotionNotFound(NotFound):
    code = "promotion_not_found"
    title = "Promotion not found"


# --- conflicts --------------------------------------------------------------------------------


class AccountClosed(Conflict):
    """The account is closed: it takes no deposits, credit, spend or refunds."""

    code = "account_closed"
    title = "Account closed"


class AccountNotInGoodStanding(Conflict):
    """The account is suspended or owes money, so no refund may be requested."""

    code = "account_not_in_good_standing"
    title = "Account not in good standing"


class InsufficientRefundableFunds(Conflict):
    """A refund asked for more prepaid cash than is available."""

    code = "insufficient_refundable_funds"
    title = "Insufficient refundable funds"


class RecentSpend(Conflict):
    """Spend was recorded within the refund quiet period."""

    code = "recent_spend"
    title = "Spend recorded recently"


class CreditNotWithdrawable(Conflict):
    """Every withdrawal request: prepaid funds are refunded, credit is never paid out."""

    code = "withdrawal_not_supported"
    title = "Withdrawals are not supported"


class InvalidRefundTransition(Conflict):
    """A refund was asked to move to a state its lifecycle does not allow from where it is."""

    code = "invalid_refund_transition"
    title = "Refund cannot make this transition"


class InvalidAccountTransition(Conflict):
    """Suspend or reinstate asked of an account in a state that does not allow it."""

    code = "invalid_account_transition"
    title = "Account cannot make this transition"


class LotNotActive(Conflict):
    """A void asked of a lot that is already used, expired, voided or forfeited."""

    code = "lot_not_active"
    title = "Credit lot is not active"


class DepositAlreadyReversed(Conflict):
    """A deposit can be reversed once; a second reversal would take its amount twice."""

    code = "deposit_already_reversed"
    title = "Deposit already reversed"


class PromotionAlreadyEnded(Conflict):
    """End was asked of a promotion whose redemption window has already closed."""

    code = "promotion_already_ended"
    title = "Promotion already ended"


class RedemptionRefused(Conflict):
    """A code could not be redeemed. Every refusal counts as a failed attempt of the business."""

    code = "redemption_refused"
    title = "Redemption refused"


class CodeInvalid(RedemptionRefused):
    """No promotion has this code (a typo, or a guess)."""

    code = "code_invalid"
    title = "Code invalid"


class CodeUsed(RedemptionRefused):
    """The code was valid but has already been redeemed (codes are single-use)."""

    code = "code_used"
    title = "Code already used"


class PromotionNotActive(RedemptionRefused):
    """The promotion's redemption window has not opened yet, or has closed."""

    code = "promotion_not_active"
    title = "Promotion not active"


class PromotionExhausted(RedemptionRefused):
    """`max_redemptions` or `budget` would be exceeded by one more redemption."""

    code = "promotion_exhausted"
    title = "Promotion exhausted"


class AlreadyRedeemed(RedemptionRefused):
    """This account, or another account of its business, already redeemed the promotion."""

    code = "already_redeemed"
    title = "Promotion already redeemed"


class NotEligible(RedemptionRefused):
    """The account does not meet the promotion's eligibility (age, spend, currency, standing)."""

    code = "not_eligible"
    title = "Account not eligible"


class ResponseShownOnce(Conflict):
    """A repeat of a request whose response held secrets shown once (API keys, promotion codes):
    the work was done once, but its response is not stored, so it cannot be given again."""

    code = "response_shown_once"
    title = "Response shown once"


class IdempotencyKeyInUse(Conflict):
    """A request with the same Idempotency-Key is still being processed."""

    code = "idempotency_key_in_use"
    title = "Idempotency key in use"


# --- forbidden --------------------------------------------------------------------------------


class SelfApproval(Forbidden):
    """A refund may never be approved with the key that requested it."""

    code = "self_approval_forbidden"
    title = "A refund cannot be approved by its requester"
