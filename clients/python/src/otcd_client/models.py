"""Typed models of the desk's answers. Every amount, price, quantity and rate is a :class:`decimal.Decimal`
(the desk sends decimal strings; a float never appears). Fields the SDK does not know yet are kept in
``extra``, so a newer desk never breaks an older SDK."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, Generic, List, Optional, TypeVar

T = TypeVar("T")


@dataclass
class Model:
    extra: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False, kw_only=True)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]):
        return parse(cls, data)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(args[0], value) if len(args) == 1 else value
    if hint is Decimal:
        if isinstance(value, float):
            raise TypeError("the desk sent a JSON number for a decimal")
        return Decimal(str(value))
    if origin in (list, List):
        (inner,) = typing.get_args(hint)
        return [_convert(inner, item) for item in value]
    if isinstance(hint, type) and issubclass(hint, Model) and isinstance(value, dict):
        return parse(hint, value)
    return value


def parse(cls, data: Dict[str, Any]):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    kwargs = {name: _convert(hints[name], data[name]) for name in names if name in data}
    for name in names - kwargs.keys():
        kwargs[name] = None
    return cls(**kwargs, extra={k: v for k, v in data.items() if k not in names})


@dataclass
class Page(Generic[T]):
    """One page of a list: pass ``next_cursor`` as ``cursor`` for the next (None on the last page)."""
    items: List[T]
    next_cursor: Optional[str]


@dataclass
class Instrument(Model):
    symbol: str
    base: str
    quote: str
    price_increment: Decimal
    quantity_increment: Decimal
    quantity_min: Decimal
    quantity_max: Optional[Decimal]


@dataclass
class Asset(Model):
    code: str
    scale: int
    kind: str


@dataclass
class AccountLimits(Model):
    spread_bps: Optional[Decimal]
    trade_notional_usd_max: Optional[Decimal]
    daily_notional_usd_max: Optional[Decimal]
    credit_limit_usd: Optional[Decimal]


@dataclass
class AccountUsage(Model):
    daily_notional_usd: Optional[Decimal]
    open_exposure_usd: Optional[Decimal]


@dataclass
class Account(Model):
    client_id: str
    name: str
    tier: str
    kyc_status: str
    kyc_expires_at: Optional[str]
    settlement: str
    limits: Optional[AccountLimits]
    usage: Optional[AccountUsage]


@dataclass
class Balance(Model):
    asset: str
    available: Decimal
    reserved: Decimal


@dataclass
class LedgerEntry(Model):
    entry_id: str
    transaction_id: str
    created_at: str
    asset: str
    account: str
    type: str
    reference: Optional[str]
    amount: Decimal
    balance: Decimal


@dataclass
class Price(Model):
    instrument: str
    quantity: Decimal
    bid: Optional[Decimal]
    ask: Optional[Decimal]
    firm: bool
    as_of: Optional[str]


@dataclass
class Quote(Model):
    quote_id: str
    client_rfq_id: Optional[str]
    instrument: str
    side: str
    quantity: Decimal
    price: Decimal
    firm: bool
    created_at: str
    valid_until: str
    state: str
    market_as_of: Optional[str]
    fee_bps: Optional[Decimal]


@dataclass
class Fill(Model):
    trade_id: str
    price: Decimal
    quantity: Decimal
    fee: Decimal
    executed_at: str


@dataclass
class Order(Model):
    order_id: str
    client_order_id: str
    type: str
    status: str
    instrument: str
    side: str
    quantity: Decimal
    filled_quantity: Decimal
    average_price: Optional[Decimal]
    created_at: str
    quote_id: Optional[str]
    limit_price: Optional[Decimal]
    time_in_force: Optional[str]
    expire_at: Optional[str]
    cancel_reason: Optional[str]
    trades: Optional[List[Fill]]


@dataclass
class Trade(Model):
    trade_id: str
    order_id: str
    instrument: str
    side: str
    price: Decimal
    quantity: Decimal
    quote_amount: Decimal
    quote_asset: str
    fee: Decimal
    net_amount: Decimal
    executed_at: str


@dataclass
class Destination(Model):
    destination_id: str
    asset: str
    network: Optional[str]
    address: str
    label: Optional[str]
    status: str
    created_at: str


@dataclass
class Withdrawal(Model):
    withdrawal_id: str
    client_withdrawal_id: str
    asset: str
    amount: Decimal
    destination_id: str
    status: str
    external_reference: Optional[str]
    failure_reason: Optional[str]
    created_at: str
    updated_at: Optional[str]


@dataclass
class DepositAddress(Model):
    asset: str
    address: str
    network: Optional[str]
    confirmations_required: Optional[int]


@dataclass
class Session(Model):
    token: str
    expires_at: str
    client_id: Optional[str]
    scopes: List[str]


@dataclass
class ApiKey(Model):
    """A key as the desk shows it; ``secret`` only in the answer that created an HMAC key."""
    key_id: str
    secret: Optional[str]
    client_id: Optional[str]
    scopes: List[str]
    algorithm: str
    allowed_ips: Optional[List[str]]
    created_at: str
    revoked_at: Optional[str]


@dataclass
class ClientRecord(Model):
    """A client as the operator endpoints show it (KYC history, screening and the rest are in ``extra``)."""
    client_id: str
    name: str
    jurisdiction: str
    tier: str
    kyc_status: str
    kyc_expires_at: Optional[str]
    settlement: str
    credit_limit_usd: Optional[Decimal]


@dataclass
class Webhook(Model):
    """A webhook endpoint; ``secret`` ("whsec_...") only in the answer that registered it."""
    id: str
    url: str
    events: List[str]
    client_id: Optional[str]
    created_at: str
    secret: Optional[str]


@dataclass
class WebhookDelivery(Model):
    id: str
    webhook_id: str
    seq: int
    type: str
    status: str
    attempts: int
    last_status_code: Optional[int]
    last_error: Optional[str]
    next_attempt_at: Optional[str]
    delivered_at: Optional[str]
    created_at: str


@dataclass
class WebhookEvent(Model):
    """A verified webhook delivery body (see :func:`otcd_client.verify_webhook`). ``data`` is the same object the
    stream carries for this ``type``, as a model (Order, Trade, Withdrawal, Balance) where the SDK knows it."""
    id: str
    webhook_id: str
    seq: int
    type: str
    created_at: str
    data: Any


STREAM_MODELS = {"order": Order, "trade": Trade, "balance": Balance, "withdrawal": Withdrawal}


def parse_event_data(kind: str, data: Dict[str, Any]) -> Any:
    """The model of a stream message or webhook payload of ``kind``, or the dict itself for other kinds."""
    model = STREAM_MODELS.get(kind)
    return parse(model, data) if model is not None and isinstance(data, dict) else data
