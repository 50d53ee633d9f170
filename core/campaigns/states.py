"""The plan state machine (方案状态): one table of allowed (state, action) pairs and where
each leads, who may take each action, and which date step a campaign is due for."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from core.platform.errors import (
    Conflict,
)
from core.platform.permissions import Action, Actor, allowed
from db.models import (
    PlanState,
)


class PlanAction(StrEnum):
    SUBMIT = "submit"
    WITHDRAW = "withdraw"
    APPROVE = "approve"  # passes a stage that is not the last
    APPROVE_FINAL = "approve_final"  # passes the last stage
    RETURN = "return"
    REJECT = "reject"
    SCHEDULE = "schedule"
    START = "start"
    END = "end"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS = {
    PlanAction.SUBMIT: "提交",
    PlanAction.WITHDRAW: "撤回",
    PlanAction.APPROVE: "通过",
    PlanAction.APPROVE_FINAL: "通过",
    PlanAction.RETURN: "退回修改",
    PlanAction.REJECT: "驳回",
    PlanAction.SCHEDULE: "排期",
    PlanAction.START: "开始",
    PlanAction.END: "结束",
}

S = PlanState
# The state machine: the only allowed (state, action) pairs and where they lead.
TRANSITIONS: dict[tuple[PlanState, PlanAction], PlanState] = {
    (S.DRAFT, PlanAction.SUBMIT): S.SUBMITTED,
    (S.RETURNED, PlanAction.SUBMIT): S.SUBMITTED,
    (S.SUBMITTED, PlanAction.WITHDRAW): S.DRAFT,
    (S.SUBMITTED, PlanAction.APPROVE): S.IN_REVIEW,
    (S.IN_REVIEW, PlanAction.APPROVE): S.IN_REVIEW,
    (S.SUBMITTED, PlanAction.APPROVE_FINAL): S.APPROVED,
    (S.IN_REVIEW, PlanAction.APPROVE_FINAL): S.APPROVED,
    (S.SUBMITTED, PlanAction.RETURN): S.RETURNED,
    (S.IN_REVIEW, PlanAction.RETURN): S.RETURNED,
    (S.SUBMITTED, PlanAction.REJECT): S.REJECTED,
    (S.IN_REVIEW, PlanAction.REJECT): S.REJECTED,
    (S.APPROVED, PlanAction.SCHEDULE): S.SCHEDULED,
    (S.SCHEDULED, PlanAction.START): S.RUNNING,
    (S.RUNNING, PlanAction.END): S.ENDED,
}
AWAITING_REVIEW = (S.SUBMITTED, S.IN_REVIEW)
DATE_STEPS = (PlanAction.SCHEDULE, PlanAction.START, PlanAction.END)  # done by the scheduler

# Who may take each action (scope and stage are checked again when it is taken).
ACTION_PERMISSIONS = {
    PlanAction.SUBMIT: Action.MANAGE_CAMPAIGNS,
    PlanAction.WITHDRAW: Action.MANAGE_CAMPAIGNS,
    PlanAction.APPROVE: Action.REVIEW_PLANS,
    PlanAction.APPROVE_FINAL: Action.REVIEW_PLANS,
    PlanAction.RETURN: Action.REVIEW_PLANS,
    PlanAction.REJECT: Action.REVIEW_PLANS,
    **dict.fromkeys(DATE_STEPS, Action.ADVANCE_CAMPAIGNS),
}


def next_state(state: PlanState, action: PlanAction) -> PlanState:
    target = TRANSITIONS.get((state, action))
    if target is None:
        raise Conflict(f"方案当前为「{state.label}」，不能{action.label}")
    return target


def available_actions(actor: Actor, state: PlanState) -> list[PlanAction]:
    """The actions the state machine allows from `state` that the actor's role may take."""
    return [
        action
        for (source, action) in TRANSITIONS
        if source is state and allowed(actor, ACTION_PERMISSIONS[action])
    ]


def due_action(state: PlanState, start: date, end: date, today: date) -> PlanAction | None:
    """The date step a campaign in `state` running [start, end] is due for today, if any."""
    if state is S.APPROVED:
        return PlanAction.SCHEDULE
    if state is S.SCHEDULED and start <= today:
        return PlanAction.START
    if state is S.RUNNING and end < today:
        return PlanAction.END
    return None
