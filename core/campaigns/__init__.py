"""Campaigns (会员权益日活动): the typed design (`design`), plans and drafts (`plans`), the
review workflow stage by stage (`approvals`), budgets, compliance wording and partner
merchants (联盟商户).

May import: `core.platform`.
"""
