from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from desk import Desk
from otcd_client import Client, generate_ed25519_key

_names = itertools.count(1)


@pytest.fixture(scope="session")
def desk():
    started = Desk().start()
    admin = Client(started.url, started.admin_key_id, secret=started.admin_secret)
    admin.admin.set_market("BTC-USD", "50000.00", "50010.00")
    admin.admin.set_market("ETH-USD", "3000.00", "3001.00")
    yield started
    admin.close()
    started.cleanup()


@pytest.fixture
def admin(desk):
    client = Client(desk.url, desk.admin_key_id, secret=desk.admin_secret)
    # Manual books age: refresh them for every test.
    client.admin.set_market("BTC-USD", "50000.00", "50010.00")
    client.admin.set_market("ETH-USD", "3000.00", "3001.00")
    yield client
    client.close()


def new_trader(desk, admin, algorithm: str, scopes=("read", "trade", "withdraw"), usd="1000000.00"):
    """A KYC-approved prefunded client with ``usd`` and a key of ``algorithm``; returns (client_id, Client)."""
    record = admin.admin.create_client(f"SDK Test {next(_names)}", "DE", kyc_status="approved")
    if usd:
        admin.admin.deposit(record.client_id, "USD", Decimal(usd), f"dep-{record.client_id}")
    if algorithm == "hmac":
        key = admin.admin.create_key(record.client_id, list(scopes))
        client = Client(desk.url, key.key_id, secret=key.secret)
    else:
        private, public = generate_ed25519_key()
        key = admin.admin.create_key(record.client_id, list(scopes), algorithm="ed25519", public_key=public)
        assert key.secret is None
        client = Client(desk.url, key.key_id, private_key=private)
    return record.client_id, client


@pytest.fixture(params=["hmac", "ed25519"])
def trader(request, desk, admin):
    client_id, client = new_trader(desk, admin, request.param)
    client.client_id = client_id
    yield client
    client.close()
