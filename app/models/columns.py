"""Column shorthands shared by every aggregate."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from sqlalchemy import DateTime, Uuid, func
from sqlalchemy.orm import mapped_column

UUIDPk = Annotated[uuid.UUID, mapped_column(Uuid, primary_key=True, default=uuid.uuid4)]
CreatedAt = Annotated[datetime, mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())]
UpdatedAt = Annotated[
    datetime, mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now())
]
Timestamp = Annotated[datetime | None, mapped_column(DateTime(timezone=True))]
