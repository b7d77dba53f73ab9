"""Typed exceptions. Every refusal of the desk is an RFC 9457 problem with a stable ``code``
(docs/api.md, "Errors"); :func:`error_from_problem` maps it to the most specific class below."""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

__all__ = [
    "OtcdError", "TransportError", "ApiError", "BadRequest", "InvalidRequest", "InstrumentUnknown",
    "Unauthenticated", "Forbidden", "KycRequired", "JurisdictionRestricted", "SanctionsHit", "NotFound",
    "QuoteNotFound", "MethodNotAllowed", "Conflict", "QuoteExpired", "QuoteAlreadyUsed", "OrderNotCancelable",
    "TradingHalted", "PayloadTooLarge", "Unprocessable", "LimitExceeded", "InsufficientFunds", "SlippageExceeded",
    "DestinationNotApproved", "RateLimited", "InternalError", "Unavailable", "PriceUnavailable",
    "WebhookVerificationError", "error_from_problem",
]


class OtcdError(Exception):
    """Base class of every error this SDK raises."""


class TransportError(OtcdError):
    """The request could not be completed (connection refused, timeout) after the allowed retries.
    For a POST carrying a client id (``client_order_id``, ``client_rfq_id``, ``client_withdrawal_id``) it is
    safe to call again with the same id: the desk executes it at most once."""


class ApiError(OtcdError):
    """A problem answered by the desk."""

    def __init__(self, status: int, code: str, detail: str = "", field: Optional[str] = None,
                 title: Optional[str] = None, retry_after: Optional[float] = None,
                 problem: Optional[Dict[str, Any]] = None):
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.title = title
        self.retry_after = retry_after
        self.problem = problem or {}
        where = f" (field {field})" if field else ""
        super().__init__(f"{status} {code}: {detail}{where}")


class BadRequest(ApiError): ...
class InvalidRequest(BadRequest): ...
class InstrumentUnknown(BadRequest): ...
class Unauthenticated(ApiError): ...
class Forbidden(ApiError): ...
class KycRequired(Forbidden): ...
class JurisdictionRestricted(Forbidden): ...
class SanctionsHit(Forbidden): ...
class NotFound(ApiError): ...
class QuoteNotFound(NotFound): ...
class MethodNotAllowed(ApiError): ...
class Conflict(ApiError): ...
class QuoteExpired(Conflict): ...
class QuoteAlreadyUsed(Conflict): ...
class OrderNotCancelable(Conflict): ...
class TradingHalted(Conflict): ...
class PayloadTooLarge(ApiError): ...
class Unprocessable(ApiError): ...
class LimitExceeded(Unprocessable): ...
class InsufficientFunds(Unprocessable): ...
class SlippageExceeded(Unprocessable): ...
class DestinationNotApproved(Unprocessable): ...
class RateLimited(ApiError): ...
class InternalError(ApiError): ...
class Unavailable(ApiError): ...
class PriceUnavailable(Unavailable): ...


_BY_CODE: Dict[str, Type[ApiError]] = {
    "invalid_request": InvalidRequest,
    "instrument_unknown": InstrumentUnknown,
    "unauthenticated": Unauthenticated,
    "forbidden": Forbidden,
    "kyc_required": KycRequired,
    "jurisdiction_restricted": JurisdictionRestricted,
    "sanctions_hit": SanctionsHit,
    "not_found": NotFound,
    "quote_not_found": QuoteNotFound,
    "method_not_allowed": MethodNotAllowed,
    "conflict": Conflict,
    "quote_expired": QuoteExpired,
    "quote_already_used": QuoteAlreadyUsed,
    "order_not_cancelable": OrderNotCancelable,
    "trading_halted": TradingHalted,
    "payload_too_large": PayloadTooLarge,
    "limit_exceeded": LimitExceeded,
    "insufficient_funds": InsufficientFunds,
    "slippage_exceeded": SlippageExceeded,
    "destination_not_approved": DestinationNotApproved,
    "rate_limited": RateLimited,
    "internal": InternalError,
    "price_unavailable": PriceUnavailable,
    "unavailable": Unavailable,
}

_BY_STATUS: Dict[int, Type[ApiError]] = {
    400: BadRequest, 401: Unauthenticated, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed, 409: Conflict,
    413: PayloadTooLarge, 422: Unprocessable, 429: RateLimited, 500: InternalError, 503: Unavailable,
}


def error_from_problem(status: int, problem: Dict[str, Any], retry_after: Optional[float] = None) -> ApiError:
    code = str(problem.get("code") or "")
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status, ApiError)
    return cls(status, code or f"http_{status}", str(problem.get("detail") or ""), problem.get("field"),
               problem.get("title"), retry_after, problem)


class WebhookVerificationError(OtcdError):
    """A webhook delivery whose signature, timestamp or id does not check out: do not act on it."""
