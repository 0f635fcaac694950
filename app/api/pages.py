"""Query models shared by every list endpoint (API.md: ``limit`` default 50, max 200, ``cursor``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.api.schemas import CURSOR_PATTERN
from app.models.pagination import DEFAULT_LIMIT, MAX_LIMIT


class PageQuery(BaseModel):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(
        default=None, max_length=512, pattern=CURSOR_PATTERN, description="The next_cursor of the previous page."
    )
