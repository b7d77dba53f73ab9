/** The desk's answers. Every amount, price, quantity and rate is a decimal string (`Decimal`), exactly as the
 * desk sent it: never converted to a JavaScript number (binary floating point cannot hold 0.1). Use a decimal
 * library of your choice for arithmetic. */

/** A decimal string such as "0.50000000" or "50110.02". */
export type Decimal = string;
/** What inputs take: a decimal string, or a bigint for whole numbers. Numbers are refused. */
export type DecimalInput = string | bigint;

export type Side = "buy" | "sell";
export type TimeInForce = "gtc" | "gtd" | "ioc" | "fok";
export type OrderStatus = "open" | "partially_filled" | "filled" | "cancelled" | "expired";
export type WebhookEventKind = "order" | "trade" | "withdrawal" | "settlement" | "balance";

export interface Page<T> { items: T[]; next_cursor: string | null }

export interface Instrument {
  symbol: string; base: string; quote: string; price_increment: Decimal; quantity_increment: Decimal;
  quantity_min: Decimal; quantity_max: Decimal | null;
}
export interface Asset { code: string; scale: number; kind: "crypto" | "fiat" }
export interface Account {
  client_id: string; name: string; tier: string; kyc_status: string; kyc_expires_at: string | null;
  settlement: "prefunded" | "credit";
  limits: { spread_bps: Decimal | null; trade_notional_usd_max: Decimal | null; daily_notional_usd_max: Decimal | null; credit_limit_usd: Decimal | null };
  usage: { daily_notional_usd: Decimal; open_exposure_usd: Decimal };
  [extra: string]: unknown;
}
export interface Balance { asset: string; available: Decimal; reserved: Decimal }
export interface LedgerEntry {
  entry_id: string; transaction_id: string; created_at: string; asset: string; account: "available" | "reserved";
  type: string; reference: string | null; amount: Decimal; balance: Decimal;
}
export interface Price { instrument: string; quantity: Decimal; bid: Decimal | null; ask: Decimal | null; firm: boolean; as_of: string | null }
export interface Quote {
  quote_id: string; client_rfq_id: string | null; instrument: string; side: Side; quantity: Decimal; price: Decimal;
  firm: boolean; created_at: string; valid_until: string; state: "open" | "used" | "expired";
  market_as_of?: string | null; fee_bps?: Decimal;
}
export interface Fill { trade_id: string; price: Decimal; quantity: Decimal; fee: Decimal; executed_at: string }
export interface Order {
  order_id: string; client_order_id: string; type: "quote" | "market" | "limit"; status: OrderStatus;
  instrument: string; side: Side; quantity: Decimal; filled_quantity: Decimal; average_price: Decimal | null;
  created_at: string; quote_id?: string; limit_price?: Decimal; time_in_force?: TimeInForce; expire_at?: string;
  cancel_reason?: string; trades?: Fill[];
}
export interface Trade {
  trade_id: string; order_id: string; instrument: string; side: Side; price: Decimal; quantity: Decimal;
  quote_amount: Decimal; quote_asset: string; fee: Decimal; net_amount: Decimal; executed_at: string;
}
export interface Destination {
  destination_id: string; asset: string; network: string | null; address: string; label: string | null;
  status: "approved" | "pending_review" | "rejected"; created_at: string;
}
export interface Withdrawal {
  withdrawal_id: string; client_withdrawal_id: string; asset: string; amount: Decimal; destination_id: string;
  status: "pending" | "submitted" | "completed" | "failed"; external_reference: string | null;
  failure_reason: string | null; created_at: string; updated_at: string | null;
}
export interface DepositAddress { asset: string; address: string; network?: string; confirmations_required?: number }
export interface Session { token: string; expires_at: string; client_id: string | null; scopes: string[] }
export interface ApiKey {
  key_id: string; secret?: string; client_id: string | null; scopes: string[]; algorithm: "hmac" | "ed25519";
  allowed_ips: string[]; created_at: string; revoked_at: string | null;
}
export interface ClientRecord {
  client_id: string; name: string; jurisdiction: string; tier: string; kyc_status: string;
  kyc_expires_at: string | null; settlement: string; credit_limit_usd?: Decimal | null; [extra: string]: unknown;
}
export interface Webhook {
  id: string; url: string; events: WebhookEventKind[]; client_id: string | null; created_at: string;
  /** Only in the answer that registered it. */
  secret?: string;
}
export interface WebhookDelivery {
  id: string; webhook_id: string; seq: number; type: WebhookEventKind; status: "pending" | "delivered" | "failed";
  attempts: number; last_status_code: number | null; last_error: string | null; next_attempt_at: string | null;
  delivered_at: string | null; created_at: string;
}
export interface WebhookEvent {
  id: string; webhook_id: string; seq: number; type: WebhookEventKind; created_at: string;
  data: Record<string, unknown>;
}
