"""The refund lifecycle.

    pending ──approve──▶ approved ──settle──▶ paid
       │                     └──────fail────▶ failed
       ├──reject──▶ rejected
       └──cancel──▶ canceled

A pending or approved refund holds its amount in `cash.held`; rejected, canceled and failed refunds
give it back to `cash.available`; a paid refund pays it out.
"""

from __future__ import annotations

from enum import StrEnum

from adledger.domain.errors import InvalidRefundTransition, SelfApproval


class RefundStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    PAID = "paid"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELED = "canceled"


class RefundAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    SETTLE = "settle"
    FAIL = "fail"


TRANSITIONS: dict[tuple[RefundStatus, RefundAction], RefundStatus] = {
    (RefundStatus.PENDING, RefundAction.APPROVE): RefundStatus.APPROVED,
    (RefundStatus.PENDING, RefundAction.REJECT): RefundStatus.REJECTED,
    (RefundStatus.PENDING, RefundAction.CANCEL): RefundStatus.CANCELED,
    (RefundStatus.APPROVED, RefundAction.SETTLE): RefundStatus.PAID,
    (RefundStatus.APPROVED, RefundAction.FAIL): RefundStatus.FAILED,
}

HOLDING = frozenset({RefundStatus.PENDING, RefundStatus.APPROVED})
RELEASES = frozenset({RefundStatus.REJECTED, RefundStatus.CANCELED, RefundStatus.FAILED})


def next_status(
    current: str, action: RefundAction, *, actor_key: str, requester_key: str
) -> RefundStatus:
    """The status after `action`, or an error if the lifecycle or four-eyes rule forbids it."""
    status = RefundStatus(current)
    new = TRANSITIONS.get((status, action))
    if new is None:
        raise InvalidRefundTransition(f"a {status.value} refund cannot be {_past(action)}")
    if action is RefundAction.APPROVE and actor_key == requester_key:
        raise SelfApproval("a refund can never be approved with the key that requested it")
    return new


def _past(action: RefundAction) -> str:
    return {
        RefundAction.APPROVE: "approved",
        RefundAction.REJECT: "rejected",
        RefundAction.CANCEL: "canceled",
        RefundAction.SETTLE: "settled",
        RefundAction.FAIL: "failed",
    }[action]
