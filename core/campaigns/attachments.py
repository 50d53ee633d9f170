"""Attachments of a plan (方案附件): the documents a city sends with its plan, checked by
type and size."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from core.campaigns.plans import (
    EDITABLE_STATES,
    AttachmentRead,
    ensure_campaign_allowed,
    load_campaign,
)
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.errors import (
    Conflict,
    FieldProblem,
    NotFound,
    ValidationFailed,
)
from core.platform.permissions import Action, Actor
from db.engine import write_transaction
from db.models import (
    CampaignAttachment,
)

ATTACHMENT_TYPES = {
    b"%PDF": "application/pdf",
    b"\x89PNG": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
}
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 10


def add_attachment(
    session: Session, *, actor: Actor, campaign_id: int, filename: str, data: bytes
) -> AttachmentRead:
    """PDF or image, at most 10 MB, the type judged by content not by name."""
    content_type = next(
        (t for magic, t in ATTACHMENT_TYPES.items() if data.startswith(magic)), None
    )
    problems = []
    if content_type is None:
        problems.append(FieldProblem("attachment", "附件只支持 PDF、PNG、JPEG 文件"))
    if len(data) > MAX_ATTACHMENT_BYTES:
        problems.append(
            FieldProblem("attachment", f"附件不能超过 {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
        )
    if not data:
        problems.append(FieldProblem("attachment", "附件是空文件"))
    if problems:
        raise ValidationFailed(problems, summary=f"附件「{filename}」未上传")
    with write_transaction(session):
        campaign = load_campaign(session, campaign_id)
        ensure_campaign_allowed(session, actor, Action.MANAGE_CAMPAIGNS, campaign)
        if campaign.state not in EDITABLE_STATES:
            raise Conflict("已提交的方案不能再添加附件")
        count = session.execute(
            sa.select(sa.func.count()).where(CampaignAttachment.campaign_id == campaign_id)
        ).scalar_one()
        if count >= MAX_ATTACHMENTS:
            raise ValidationFailed(
                [FieldProblem("attachment", f"每个方案最多 {MAX_ATTACHMENTS} 个附件")]
            )
        row = CampaignAttachment(
            campaign_id=campaign_id,
            filename=filename[-120:],
            content_type=content_type,
            size=len(data),
            data=data,
            uploaded_by=actor.user_id,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action=AuditAction.ATTACHMENT_ADD,
            target_type="campaign",
            target_id=campaign_id,
            summary=f"上传附件「{row.filename}」（{len(data) // 1024} KB）",
        )
        return AttachmentRead(row.id, row.filename, row.content_type, row.size, row.uploaded_at)


def remove_attachment(session: Session, *, actor: Actor, attachment_id: int) -> None:
    with write_transaction(session):
        row = session.get(CampaignAttachment, attachment_id)
        if row is None:
            raise NotFound("附件不存在")
        campaign = load_campaign(session, row.campaign_id)
        ensure_campaign_allowed(session, actor, Action.MANAGE_CAMPAIGNS, campaign)
        if campaign.state not in EDITABLE_STATES:
            raise Conflict("已提交的方案不能删除附件")
        session.delete(row)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.ATTACHMENT_REMOVE,
            target_type="campaign",
            target_id=campaign.id,
            summary=f"删除附件「{row.filename}」",
        )


def attachment_content(
    session: Session, *, actor: Actor, attachment_id: int
) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) for a download, for whoever may see the plan."""
    row = session.get(CampaignAttachment, attachment_id)
    if row is None:
        raise NotFound("附件不存在")
    ensure_campaign_allowed(
        session, actor, Action.VIEW_CAMPAIGNS, load_campaign(session, row.campaign_id)
    )
    return row.filename, row.content_type, row.data
