"""Column types that encrypt on the way in and decrypt on the way out.

Each column names its associated data (``"users.email"``) explicitly: a type does not know the
column it is attached to, and spelling it out keeps the binding visible next to the column.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator

from app.security.crypto import current_crypto


class EncryptedText(TypeDecorator[str]):
    impl = LargeBinary
    cache_ok = True

    def __init__(self, associated_data: str) -> None:
        super().__init__()
        self.associated_data = associated_data

    def process_bind_param(self, value: str | None, dialect: Any) -> bytes | None:
        if value is None:
            return None
        return current_crypto().keyring.encrypt(value.encode("utf-8"), self.associated_data)

    def process_result_value(self, value: bytes | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return current_crypto().keyring.decrypt(value, self.associated_data).decode("utf-8")


class EncryptedJSON(TypeDecorator[Any]):
    impl = LargeBinary
    cache_ok = True

    def __init__(self, associated_data: str) -> None:
        super().__init__()
        self.associated_data = associated_data

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        if value is None:
            return None
        raw = json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return current_crypto().keyring.encrypt(raw, self.associated_data)

    def process_result_value(self, value: bytes | None, dialect: Any) -> Any:
        if value is None:
            return None
        return json.loads(current_crypto().keyring.decrypt(value, self.associated_data))


def alembic_render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Alembic hook: render encrypting columns as their storage type, so migrations hold no app code.

    (``sa`` is imported by every revision's template.)
    """
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl.__class__.__name__}()"
    return False
