"""The endpoints, written once for :class:`Client` and :class:`AsyncClient`.

Each method builds a :class:`Call` (method, path, query, body, how to read the answer, whether a retry is
safe) and hands it to ``self._call``: the synchronous client returns the result, the asynchronous one returns an
awaitable of it. No I/O happens here."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union
from urllib.parse import quote, urlencode

from . import models as m

DecimalLike = Union[Decimal, str, int]

#: A JSON body at most this size is sent (the desk refuses more than 64 KiB).
BODY_BYTES_MAX = 64 * 1024
#: Lists answer at most this many items per page.
PAGE_LIMIT_MAX = 1000


def decimal_text(value: DecimalLike, name: str) -> str:
    """A decimal as the desk wants it: a string. Floats are refused: 0.1 as a float is not 0.1."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{name}: use decimal.Decimal or a string such as \"0.5\", never a float")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{name}: not a finite decimal")
        return format(value, "f")
    if isinstance(value, str):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{name}: {value!r} is not a decimal") from None
        if not parsed.is_finite():
            raise ValueError(f"{name}: not a finite decimal")
        return format(parsed, "f")
    raise TypeError(f"{name}: expected Decimal, str or int, got {type(value).__name__}")


def new_client_id(prefix: str) -> str:
    """A fresh idempotency id (1-64 characters): ``prefix-`` and 24 random hex digits."""
    return f"{prefix}-{secrets.token_hex(12)}"


def _drop_none(values: Mapping[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


@dataclass
class Call:
    method: str
    path: str
    query: Optional[Dict[str, Any]] = None
    body: Optional[Dict[str, Any]] = None
    parse: Callable[[Any], Any] = lambda data: data
    #: Safe to send again after a timeout: reads, PUT/DELETE, and POSTs carrying an idempotency id.
    retry_safe: bool = False

    def path_with_query(self) -> str:
        query = _drop_none(self.query or {})
        if not query:
            return self.path
        return f"{self.path}?{urlencode(query, quote_via=quote, safe='')}"

    def body_text(self) -> str:
        if self.body is None:
            return ""
        text = json.dumps(self.body, separators=(",", ":"), ensure_ascii=False)
        if len(text.encode()) > BODY_BYTES_MAX:
            raise ValueError(f"request body over {BODY_BYTES_MAX} bytes")
        return text


def _one(model):
    return lambda data: m.parse(model, data)


def _page(model):
    return lambda data: m.Page([m.parse(model, item) for item in data.get("items", [])], data.get("next_cursor"))


def _items(model):
    return lambda data: [m.parse(model, item) for item in data.get("items", [])]


def _limit(limit: Optional[int]) -> Optional[int]:
    if limit is not None and not 1 <= limit <= PAGE_LIMIT_MAX:
        raise ValueError(f"limit: 1 to {PAGE_LIMIT_MAX}")
    return limit


def _seg(value: str) -> str:
    return quote(str(value), safe="")


class Endpoints:
    """Client endpoints (docs/api.md, "Client endpoints"). ``self._call`` is the transport."""

    def _call(self, call: Call) -> Any:  # pragma: no cover - provided by the client classes
        raise NotImplementedError

    # Catalog (no signature needed, signed anyway when a key is configured)
    def instruments(self) -> List[m.Instrument]:
        return self._call(Call("GET", "/v1/instruments", parse=_items(m.Instrument), retry_safe=True))

    def assets(self) -> List[m.Asset]:
        return self._call(Call("GET", "/v1/assets", parse=_items(m.Asset), retry_safe=True))

    # Account
    def account(self, client_id: Optional[str] = None) -> m.Account:
        return self._call(Call("GET", "/v1/account", {"client_id": client_id}, parse=_one(m.Account), retry_safe=True))

    def balances(self, client_id: Optional[str] = None) -> List[m.Balance]:
        return self._call(Call("GET", "/v1/balances", {"client_id": client_id}, parse=_items(m.Balance), retry_safe=True))

    def ledger(self, asset: Optional[str] = None, *, from_: Optional[str] = None, to: Optional[str] = None,
               limit: Optional[int] = None, cursor: Optional[str] = None,
               client_id: Optional[str] = None) -> m.Page[m.LedgerEntry]:
        query = {"asset": asset, "from": from_, "to": to, "limit": _limit(limit), "cursor": cursor, "client_id": client_id}
        return self._call(Call("GET", "/v1/ledger", query, parse=_page(m.LedgerEntry), retry_safe=True))

    # Prices and quotes
    def price(self, instrument: str, quantity: Optional[DecimalLike] = None) -> m.Price:
        query = {"quantity": decimal_text(quantity, "quantity") if quantity is not None else None}
        return self._call(Call("GET", f"/v1/prices/{_seg(instrument)}", query, parse=_one(m.Price), retry_safe=True))

    def rfq(self, instrument: str, side: str, quantity: Optional[DecimalLike] = None, *,
            quote_quantity: Optional[DecimalLike] = None, client_rfq_id: Optional[str] = None) -> m.Quote:
        """A firm quote (``POST /v1/rfq``). ``client_rfq_id`` is generated when not given and kept across
        retries, so a retried RFQ never makes two quotes."""
        if (quantity is None) == (quote_quantity is None):
            raise ValueError("give exactly one of quantity or quote_quantity")
        body = _drop_none({
            "client_rfq_id": client_rfq_id or new_client_id("rfq"),
            "instrument": instrument,
            "side": side,
            "quantity": decimal_text(quantity, "quantity") if quantity is not None else None,
            "quote_quantity": decimal_text(quote_quantity, "quote_quantity") if quote_quantity is not None else None,
        })
        return self._call(Call("POST", "/v1/rfq", body=body, parse=_one(m.Quote), retry_safe=True))

    def quote(self, quote_id: str) -> m.Quote:
        return self._call(Call("GET", f"/v1/quotes/{_seg(quote_id)}", parse=_one(m.Quote), retry_safe=True))

    # Orders and trades
    def place_order(self, body: Dict[str, Any]) -> m.Order:
        """``POST /v1/orders`` with a full body; a missing ``client_order_id`` is generated (and kept across
        retries). Amounts in ``body`` may be Decimal, str or int, never float."""
        body = dict(body)
        body.setdefault("client_order_id", new_client_id("ord"))
        for key in ("quantity", "limit_price", "reference_price", "slippage_bps"):
            if body.get(key) is not None:
                body[key] = decimal_text(body[key], key)
        return self._call(Call("POST", "/v1/orders", body=body, parse=_one(m.Order), retry_safe=True))

    def accept(self, quote: Union[m.Quote, str], *, side: Optional[str] = None,
               client_order_id: Optional[str] = None) -> m.Order:
        """Execute a firm quote (an order of type ``quote``); ``side`` only for a streamed two-way quote."""
        quote_id = quote.quote_id if isinstance(quote, m.Quote) else quote
        return self.place_order(_drop_none({"client_order_id": client_order_id, "type": "quote",
                                            "quote_id": quote_id, "side": side}))

    def market_order(self, instrument: str, side: str, quantity: DecimalLike, *,
                     reference_price: Optional[DecimalLike] = None, slippage_bps: Optional[DecimalLike] = None,
                     client_order_id: Optional[str] = None) -> m.Order:
        return self.place_order(_drop_none({"client_order_id": client_order_id, "type": "market",
                                            "instrument": instrument, "side": side, "quantity": quantity,
                                            "reference_price": reference_price, "slippage_bps": slippage_bps}))

    def limit_order(self, instrument: str, side: str, quantity: DecimalLike, limit_price: DecimalLike, *,
                    time_in_force: str = "gtc", expire_at: Optional[str] = None,
                    client_order_id: Optional[str] = None) -> m.Order:
        return self.place_order(_drop_none({"client_order_id": client_order_id, "type": "limit",
                                            "instrument": instrument, "side": side, "quantity": quantity,
                                            "limit_price": limit_price, "time_in_force": time_in_force,
                                            "expire_at": expire_at}))

    def order(self, order_id: str) -> m.Order:
        return self._call(Call("GET", f"/v1/orders/{_seg(order_id)}", parse=_one(m.Order), retry_safe=True))

    def orders(self, status: Optional[str] = None, *, limit: Optional[int] = None,
               cursor: Optional[str] = None) -> m.Page[m.Order]:
        query = {"status": status, "limit": _limit(limit), "cursor": cursor}
        return self._call(Call("GET", "/v1/orders", query, parse=_page(m.Order), retry_safe=True))

    def cancel_order(self, order_id: str) -> m.Order:
        return self._call(Call("DELETE", f"/v1/orders/{_seg(order_id)}", parse=_one(m.Order), retry_safe=True))

    def cancel_all_orders(self, instrument: Optional[str] = None) -> List[m.Order]:
        return self._call(Call("DELETE", "/v1/orders", {"instrument": instrument}, parse=_items(m.Order), retry_safe=True))

    def trades(self, instrument: Optional[str] = None, *, from_: Optional[str] = None, to: Optional[str] = None,
               limit: Optional[int] = None, cursor: Optional[str] = None) -> m.Page[m.Trade]:
        query = {"instrument": instrument, "from": from_, "to": to, "limit": _limit(limit), "cursor": cursor}
        return self._call(Call("GET", "/v1/trades", query, parse=_page(m.Trade), retry_safe=True))

    # Settlement
    def add_destination(self, asset: str, address: str, *, network: Optional[str] = None,
                        label: Optional[str] = None) -> m.Destination:
        """``POST /v1/destinations``: not idempotent on the desk, so retried only when the request surely did
        not arrive (connection refused), on 429 and on 503."""
        body = _drop_none({"asset": asset, "address": address, "network": network, "label": label})
        return self._call(Call("POST", "/v1/destinations", body=body, parse=_one(m.Destination)))

    def destinations(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> m.Page[m.Destination]:
        query = {"limit": _limit(limit), "cursor": cursor}
        return self._call(Call("GET", "/v1/destinations", query, parse=_page(m.Destination), retry_safe=True))

    def withdraw(self, asset: str, amount: DecimalLike, destination_id: str, *,
                 client_withdrawal_id: Optional[str] = None) -> m.Withdrawal:
        body = {"client_withdrawal_id": client_withdrawal_id or new_client_id("wd"), "asset": asset,
                "amount": decimal_text(amount, "amount"), "destination_id": destination_id}
        return self._call(Call("POST", "/v1/withdrawals", body=body, parse=_one(m.Withdrawal), retry_safe=True))

    def withdrawal(self, withdrawal_id: str) -> m.Withdrawal:
        return self._call(Call("GET", f"/v1/withdrawals/{_seg(withdrawal_id)}", parse=_one(m.Withdrawal), retry_safe=True))

    def withdrawals(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> m.Page[m.Withdrawal]:
        query = {"limit": _limit(limit), "cursor": cursor}
        return self._call(Call("GET", "/v1/withdrawals", query, parse=_page(m.Withdrawal), retry_safe=True))

    def deposit_address(self, asset: str) -> m.DepositAddress:
        return self._call(Call("POST", "/v1/deposit-addresses", body={"asset": asset},
                               parse=_one(m.DepositAddress), retry_safe=True))

    # Sessions (web pages)
    def create_session(self, *, ttl_seconds: Optional[int] = None, scopes: Optional[Sequence[str]] = None) -> m.Session:
        body = _drop_none({"ttl_seconds": ttl_seconds, "scopes": list(scopes) if scopes is not None else None})
        return self._call(Call("POST", "/v1/sessions", body=body, parse=_one(m.Session)))

    # Webhooks (contract of issue 17)
    def create_webhook(self, url: str, events: Iterable[str]) -> m.Webhook:
        """Register a webhook; the answer carries its ``secret`` ("whsec_..."), shown only this once."""
        body = {"url": url, "events": list(events)}
        return self._call(Call("POST", "/v1/webhooks", body=body, parse=_one(m.Webhook)))

    def webhooks(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> m.Page[m.Webhook]:
        query = {"limit": _limit(limit), "cursor": cursor}
        return self._call(Call("GET", "/v1/webhooks", query, parse=_page(m.Webhook), retry_safe=True))

    def webhook(self, webhook_id: str) -> m.Webhook:
        return self._call(Call("GET", f"/v1/webhooks/{_seg(webhook_id)}", parse=_one(m.Webhook), retry_safe=True))

    def delete_webhook(self, webhook_id: str) -> None:
        return self._call(Call("DELETE", f"/v1/webhooks/{_seg(webhook_id)}", parse=lambda _: None, retry_safe=True))

    def webhook_deliveries(self, webhook_id: str, *, limit: Optional[int] = None,
                           cursor: Optional[str] = None) -> m.Page[m.WebhookDelivery]:
        query = {"limit": _limit(limit), "cursor": cursor}
        return self._call(Call("GET", f"/v1/webhooks/{_seg(webhook_id)}/deliveries", query,
                               parse=_page(m.WebhookDelivery), retry_safe=True))

    def redeliver_webhook(self, webhook_id: str, delivery_id: str) -> m.WebhookDelivery:
        path = f"/v1/webhooks/{_seg(webhook_id)}/deliveries/{_seg(delivery_id)}/redeliver"
        return self._call(Call("POST", path, body={}, parse=_one(m.WebhookDelivery), retry_safe=True))


class AdminEndpoints:
    """Operator endpoints (scope ``admin``, desk keys): ``client.admin.create_client(...)``. The most used ones
    are typed; everything else is reachable with :meth:`request`."""

    def __init__(self, call: Callable[[Call], Any]):
        self._call = call

    def request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None,
                query: Optional[Dict[str, Any]] = None) -> Any:
        """Any operator endpoint; answers the JSON as it comes (amounts as decimal strings)."""
        return self._call(Call(method.upper(), path, query, body, retry_safe=method.upper() in ("GET", "PUT", "DELETE")))

    def create_client(self, name: str, jurisdiction: str, *, kyc_status: str = "pending",
                      settlement: str = "prefunded", tier: Optional[str] = None,
                      kyc_expires_at: Optional[str] = None,
                      credit_limit_usd: Optional[DecimalLike] = None) -> m.ClientRecord:
        body = _drop_none({"name": name, "jurisdiction": jurisdiction, "tier": tier, "kyc_status": kyc_status,
                           "kyc_expires_at": kyc_expires_at, "settlement": settlement,
                           "credit_limit_usd": decimal_text(credit_limit_usd, "credit_limit_usd")
                           if credit_limit_usd is not None else None})
        return self._call(Call("POST", "/v1/admin/clients", body=body, parse=_one(m.ClientRecord)))

    def clients(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> m.Page[m.ClientRecord]:
        query = {"limit": _limit(limit), "cursor": cursor}
        return self._call(Call("GET", "/v1/admin/clients", query, parse=_page(m.ClientRecord), retry_safe=True))

    def client(self, client_id: str) -> m.ClientRecord:
        return self._call(Call("GET", f"/v1/admin/clients/{_seg(client_id)}", parse=_one(m.ClientRecord), retry_safe=True))

    def update_client(self, client_id: str, **fields: Any) -> m.ClientRecord:
        """``PATCH /v1/admin/clients/{id}``: e.g. ``kyc_status="approved"``, ``tier="gold"``,
        ``credit_limit_usd=Decimal("1000000")`` (None clears it), ``screening_decision="cleared"``."""
        body = {k: (decimal_text(v, k) if k == "credit_limit_usd" and v is not None else v) for k, v in fields.items()}
        return self._call(Call("PATCH", f"/v1/admin/clients/{_seg(client_id)}", body=body,
                               parse=_one(m.ClientRecord), retry_safe=True))

    def set_kyc(self, client_id: str, kyc_status: str, kyc_expires_at: Optional[str] = None) -> m.ClientRecord:
        fields: Dict[str, Any] = {"kyc_status": kyc_status}
        if kyc_expires_at is not None:
            fields["kyc_expires_at"] = kyc_expires_at
        return self.update_client(client_id, **fields)

    def create_key(self, client_id: Optional[str], scopes: Sequence[str], *, algorithm: str = "hmac",
                   public_key: Optional[str] = None, allowed_ips: Optional[Sequence[str]] = None) -> m.ApiKey:
        """A client key (``client_id`` given) or a desk key (``client_id=None``). HMAC keys come back with their
        ``secret`` (shown once); Ed25519 keys are registered with ``public_key`` (base64 of 32 bytes, see
        :func:`otcd_client.generate_ed25519_key`)."""
        body = _drop_none({"scopes": list(scopes), "algorithm": algorithm, "public_key": public_key,
                           "allowed_ips": list(allowed_ips) if allowed_ips is not None else None})
        path = f"/v1/admin/clients/{_seg(client_id)}/keys" if client_id else "/v1/admin/keys"
        return self._call(Call("POST", path, body=body, parse=_one(m.ApiKey)))

    def revoke_key(self, key_id: str) -> Any:
        return self._call(Call("DELETE", f"/v1/admin/keys/{_seg(key_id)}", retry_safe=True))

    def deposit(self, client_id: str, asset: str, amount: DecimalLike, reference: str) -> Any:
        """Credit a confirmed deposit; ``reference`` is the idempotency id (a repeat answers the original)."""
        body = {"client_id": client_id, "asset": asset, "amount": decimal_text(amount, "amount"), "reference": reference}
        return self._call(Call("POST", "/v1/admin/deposits", body=body, retry_safe=True))

    def deposit_batch(self, deposits: Sequence[Dict[str, Any]]) -> Any:
        """Credit up to 1,000 confirmed deposits in one request (``POST /v1/admin/deposits/batch``); each item is
        ``{"client_id", "asset", "amount", "reference"}``. Answers ``{"results": [...]}``, one per item in order:
        ``{"status": 201|200, "deposit": {...}}`` or ``{"status": 4xx, "problem": {...}}``. Safe to retry: each
        reference is the idempotency id of its deposit."""
        items = [{"client_id": item["client_id"], "asset": item["asset"],
                  "amount": decimal_text(item["amount"], "amount"), "reference": item["reference"]}
                 for item in deposits]
        return self._call(Call("POST", "/v1/admin/deposits/batch", body={"deposits": items}, retry_safe=True))

    def set_market(self, instrument: str, bid: DecimalLike, ask: DecimalLike) -> Any:
        body = {"bid": decimal_text(bid, "bid"), "ask": decimal_text(ask, "ask")}
        return self._call(Call("PUT", f"/v1/admin/market/{_seg(instrument)}", body=body, retry_safe=True))

    def put_tier(self, tier: str, body: Dict[str, Any]) -> Any:
        return self._call(Call("PUT", f"/v1/admin/tiers/{_seg(tier)}", body=body, retry_safe=True))

    def tiers(self) -> Any:
        return self._call(Call("GET", "/v1/admin/tiers", retry_safe=True))

    def fund_desk(self, asset: str, amount: DecimalLike, reference: str) -> Any:
        body = {"asset": asset, "amount": decimal_text(amount, "amount"), "reference": reference}
        return self._call(Call("POST", "/v1/admin/desk/funding", body=body, retry_safe=True))

    def kill_switch(self, engaged: bool, reason: Optional[str] = None) -> Any:
        return self._call(Call("PUT", "/v1/admin/desk/kill-switch", body=_drop_none({"engaged": engaged, "reason": reason}),
                               retry_safe=True))

    def set_destination_status(self, destination_id: str, status: str) -> Any:
        return self._call(Call("PATCH", f"/v1/admin/destinations/{_seg(destination_id)}", body={"status": status},
                               retry_safe=True))

    def withdrawals(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> m.Page[m.Withdrawal]:
        query = {"limit": _limit(limit), "cursor": cursor}
        return self._call(Call("GET", "/v1/admin/withdrawals", query, parse=_page(m.Withdrawal), retry_safe=True))

    def trades(self, **query: Any) -> Any:
        return self._call(Call("GET", "/v1/admin/trades", query, retry_safe=True))

    def audit_verify(self) -> Any:
        return self._call(Call("GET", "/v1/admin/audit/verify", retry_safe=True))

    def create_webhook(self, url: str, events: Iterable[str]) -> m.Webhook:
        """A desk-wide webhook (every client's events)."""
        return self._call(Call("POST", "/v1/webhooks", body={"url": url, "events": list(events)}, parse=_one(m.Webhook)))
