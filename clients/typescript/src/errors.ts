/** Typed errors. Every refusal of the desk is an RFC 9457 problem with a stable `code` (docs/api.md, "Errors"). */

export class OtcdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The request could not be completed (connection refused, timeout) after the allowed retries. For a POST with
 * a client id (`client_order_id`, `client_rfq_id`, `client_withdrawal_id`) calling again with the same id is safe. */
export class TransportError extends OtcdError {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
  }
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  field?: string;
  [key: string]: unknown;
}

/** A problem answered by the desk: `status`, `code` (stable), `detail` (for people), `field` (invalid_request). */
export class ApiError extends OtcdError {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly field?: string;
  readonly retryAfterS?: number;
  readonly problem: Problem;

  constructor(status: number, problem: Problem, retryAfterS?: number) {
    const code = problem.code ?? `http_${status}`;
    super(`${status} ${code}: ${problem.detail ?? ""}${problem.field ? ` (field ${problem.field})` : ""}`);
    this.status = status;
    this.code = code;
    this.detail = problem.detail ?? "";
    this.field = problem.field;
    this.retryAfterS = retryAfterS;
    this.problem = problem;
  }
}

export class BadRequest extends ApiError {}
export class InvalidRequest extends BadRequest {}
export class InstrumentUnknown extends BadRequest {}
export class Unauthenticated extends ApiError {}
export class Forbidden extends ApiError {}
export class KycRequired extends Forbidden {}
export class JurisdictionRestricted extends Forbidden {}
export class SanctionsHit extends Forbidden {}
export class NotFound extends ApiError {}
export class QuoteNotFound extends NotFound {}
export class MethodNotAllowed extends ApiError {}
export class Conflict extends ApiError {}
export class QuoteExpired extends Conflict {}
export class QuoteAlreadyUsed extends Conflict {}
export class OrderNotCancelable extends Conflict {}
export class TradingHalted extends Conflict {}
export class PayloadTooLarge extends ApiError {}
export class Unprocessable extends ApiError {}
export class LimitExceeded extends Unprocessable {}
export class InsufficientFunds extends Unprocessable {}
export class SlippageExceeded extends Unprocessable {}
export class DestinationNotApproved extends Unprocessable {}
export class RateLimited extends ApiError {}
export class InternalError extends ApiError {}
export class Unavailable extends ApiError {}
export class PriceUnavailable extends Unavailable {}

type ErrorClass = new (status: number, problem: Problem, retryAfterS?: number) => ApiError;

const BY_CODE: Record<string, ErrorClass> = {
  invalid_request: InvalidRequest,
  instrument_unknown: InstrumentUnknown,
  unauthenticated: Unauthenticated,
  forbidden: Forbidden,
  kyc_required: KycRequired,
  jurisdiction_restricted: JurisdictionRestricted,
  sanctions_hit: SanctionsHit,
  not_found: NotFound,
  quote_not_found: QuoteNotFound,
  method_not_allowed: MethodNotAllowed,
  conflict: Conflict,
  quote_expired: QuoteExpired,
  quote_already_used: QuoteAlreadyUsed,
  order_not_cancelable: OrderNotCancelable,
  trading_halted: TradingHalted,
  payload_too_large: PayloadTooLarge,
  limit_exceeded: LimitExceeded,
  insufficient_funds: InsufficientFunds,
  slippage_exceeded: SlippageExceeded,
  destination_not_approved: DestinationNotApproved,
  rate_limited: RateLimited,
  internal: InternalError,
  price_unavailable: PriceUnavailable,
  unavailable: Unavailable,
};

const BY_STATUS: Record<number, ErrorClass> = {
  400: BadRequest, 401: Unauthenticated, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed, 409: Conflict,
  413: PayloadTooLarge, 422: Unprocessable, 429: RateLimited, 500: InternalError, 503: Unavailable,
};

export function errorFromProblem(status: number, problem: Problem, retryAfterS?: number): ApiError {
  const cls = (problem.code && BY_CODE[problem.code]) || BY_STATUS[status] || ApiError;
  return new cls(status, problem, retryAfterS);
}

/** A webhook delivery whose signature, timestamp or id does not check out: do not act on it. */
export class WebhookVerificationError extends OtcdError {}
