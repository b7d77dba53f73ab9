"""otcd-client: the Python SDK of the otcd OTC trading desk API (docs/api.md in the otcd repository).

>>> from otcd_client import Client
>>> client = Client("http://127.0.0.1:8080", "k_...", secret="...")
>>> quote = client.rfq("BTC-USD", "buy", "0.5")
>>> order = client.accept(quote)
"""

from ._core import new_client_id
from ._signing import Signer, generate_ed25519_key, signing_payload
from .client import AsyncClient, Client
from .errors import *  # noqa: F401,F403 - the exception classes are part of the public surface
from .errors import ApiError, OtcdError, TransportError, WebhookVerificationError
from .models import (Account, ApiKey, Asset, Balance, ClientRecord, DepositAddress, Destination, Fill, Instrument,
                     LedgerEntry, Order, Page, Price, Quote, Session, Trade, Webhook, WebhookDelivery, WebhookEvent,
                     Withdrawal)
from .stream import Stream, StreamEvent
from .webhooks import verify_webhook, webhook_signature

__version__ = "0.1.0"
