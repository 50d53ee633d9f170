"""Compliance hints (合规提示) for financial marketing copy: a maintainable list of
prohibited or risky expressions, and where a text uses them. A hit never blocks a
submission; planners see it before submitting and reviewers see it while deciding."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.errors import FieldProblem, ValidationFailed
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import write_transaction
from db.models import ComplianceTerm

SEVERITY_LABELS = {"prohibited": "禁用", "risky": "慎用"}

# The starting list (金融营销宣传合规): seeded once, then maintained by admins.
DEFAULT_TERMS: list[tuple[str, str, str]] = [
    ("保本", "prohibited", "非保本产品不得暗示保本；存款类可写「存款受存款保险保障」"),
    ("无风险", "prohibited", "任何理财、基金产品都有风险，删去"),
    ("零风险", "prohibited", "删去"),
    ("稳赚", "prohibited", "删去"),
    ("保证收益", "prohibited", "不得承诺收益"),
    ("刚性兑付", "prohibited", "删去"),
    ("稳赢", "prohibited", "删去"),
    ("100%收益", "prohibited", "不得承诺收益"),
    ("最高收益", "risky", "写明「业绩比较基准」并提示「过往业绩不代表未来表现」"),
    ("高收益", "risky", "改为客观描述，并提示风险"),
    ("收益翻倍", "prohibited", "删去"),
    ("躺赚", "prohibited", "删去"),
    ("存款送", "risky", "存款不得以赠品变相提高利率，核对是否符合规定"),
    ("guaranteed return", "prohibited", "remove"),
    ("risk-free", "prohibited", "remove"),
    ("no risk", "prohibited", "remove"),
]


@dataclass(frozen=True)
class ComplianceHit:
    term: str
    severity: str
    where: str
    excerpt: str
    suggestion: str

    @property
    def severity_label(self) -> str:
        return SEVERITY_LABELS.get(self.severity, self.severity)


def active_terms(session: Session) -> list[ComplianceTerm]:
    return list(
        session.exec(
            select(ComplianceTerm).where(ComplianceTerm.active).order_by(ComplianceTerm.term)
        )
    )


def check_texts(terms: list[ComplianceTerm], texts: list[tuple[str, str]]) -> list[ComplianceHit]:
    """Every occurrence of every term in the texts, with a few characters of context."""
    hits = []
    for where, text in texts:
        folded = text.casefold()
        for term in terms:
            needle = term.term.casefold()
            start = folded.find(needle)
            while start != -1:
                excerpt = text[max(0, start - 8) : start + len(needle) + 8]
                hits.append(
                    ComplianceHit(term.term, term.severity, where, excerpt, term.suggestion)
                )
                start = folded.find(needle, start + len(needle))
    return sorted(hits, key=lambda h: (h.severity != "prohibited", h.where))


def check(session: Session, texts: list[tuple[str, str]]) -> list[ComplianceHit]:
    return check_texts(active_terms(session), texts)


def seed_default_terms(session: Session) -> int:
    """Add the default list where missing (inside the caller's transaction)."""
    known = set(session.exec(select(ComplianceTerm.term)).all())
    added = 0
    for term, severity, suggestion in DEFAULT_TERMS:
        if term not in known:
            session.add(ComplianceTerm(term=term, severity=severity, suggestion=suggestion))
            added += 1
    return added


def list_terms(session: Session, *, actor: Actor) -> list[ComplianceTerm]:
    ensure_allowed(actor, Action.MANAGE_SETTINGS)
    return list(
        session.exec(select(ComplianceTerm).order_by(ComplianceTerm.severity, ComplianceTerm.term))
    )


def save_term(
    session: Session,
    *,
    actor: Actor,
    term: str,
    severity: str,
    suggestion: str = "",
    active: bool = True,
) -> None:
    """Add a term, or update the one with the same text."""
    ensure_allowed(actor, Action.MANAGE_SETTINGS)
    term = term.strip()
    problems = []
    if not term or len(term) > 40:
        problems.append(FieldProblem("term", "词语须为 1–40 个字"))
    if severity not in SEVERITY_LABELS:
        problems.append(FieldProblem("severity", "级别须为 禁用 或 慎用"))
    if problems:
        raise ValidationFailed(problems, summary="无法保存合规词")
    with write_transaction(session):
        row = session.exec(
            select(ComplianceTerm).where(sa.func.lower(ComplianceTerm.term) == term.lower())
        ).first()
        before = (
            {"severity": row.severity, "active": row.active, "suggestion": row.suggestion}
            if row
            else None
        )
        row = row or ComplianceTerm(term=term, severity=severity)
        row.severity, row.suggestion, row.active = severity, suggestion.strip()[:200], active
        session.add(row)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.SETTINGS_CHANGE,
            target_type="compliance_term",
            target_id=term,
            summary=f"合规词「{term}」：{SEVERITY_LABELS[severity]}{'' if active else '（停用）'}",
            before=before,
            after={"severity": severity, "active": active, "suggestion": row.suggestion},
        )
