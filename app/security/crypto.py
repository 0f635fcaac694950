"""The app's keyring and blind indexer, bound once in ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from app.security.blind_index import BlindIndexer
from app.security.keyring import Keyring

EXTENSION_KEY = "estacionate.crypto"


@dataclass(frozen=True)
class Crypto:
    keyring: Keyring
    blind: BlindIndexer


def init_app(app: Flask, crypto: Crypto) -> None:
    app.extensions[EXTENSION_KEY] = crypto


def current_crypto() -> Crypto:
    return current_app.extensions[EXTENSION_KEY]


def blind_index(purpose: str, value: str, *, scope: str = "") -> bytes:
    return current_crypto().blind.index(purpose, value, scope=scope)
