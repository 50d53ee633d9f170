"""Errors that core services raise; each carries a message in Chinese for the user."""

from __future__ import annotations

from dataclasses import dataclass, field


class DomainError(Exception):
    """Base of every error a user can cause; `message` is shown as is in the UI and CLI."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermissionDenied(DomainError):
    """The acting user's role or data scope does not allow the action."""


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    """Someone else changed the record first (optimistic locking) or a unique key clashed."""


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


@dataclass
class ValidationFailed(DomainError):
    """Input was refused; `problems` lists every field at fault."""

    problems: list[FieldProblem] = field(default_factory=list)
    summary: str = "输入有误，请修改后重试"

    def __post_init__(self) -> None:
        details = "；".join(p.message for p in self.problems)
        super().__init__(f"{self.summary}：{details}" if details else self.summary)

    def __reduce__(self) -> tuple:
        # Survives being sent back from a worker process with its problems intact.
        return (type(self), (self.problems, self.summary))
