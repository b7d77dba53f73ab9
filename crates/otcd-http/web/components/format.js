// Numbers for people, from the API's decimal strings, by string manipulation only: money never becomes a JavaScript
// number (a float would change digits: 0.1 + 0.2, or any balance above 2^53 minor units).
//
// Display rule: an amount is shown with at least its asset's `display_decimals` places (GET /v1/assets), and with
// more only when the value has non-zero digits beyond them; trailing zeros beyond that are dropped. So nothing is
// ever rounded (a display never shows more or less money than there is), and `500.000000000000000000` ETH reads
// `500.000000`. Thousands are grouped with `,`.
//
// Used by the web components and the console (served at /ui/components/format.js); tested with `node --test`
// (crates/otcd-http/tests/js/format.test.mjs, run by `cargo test -p otcd-http --test js`).

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/** `"1234567"` → `"1,234,567"`: separators every three digits of a string of digits. */
export function groupDigits(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * Formats a decimal string for people: grouped thousands, at least `decimals` fractional places (more only for
 * non-zero digits, never rounded). `decimals` null or undefined: the fraction is kept as given. Anything that is
 * not a decimal string is returned as text unchanged (`—` for null and undefined).
 */
export function formatDecimal(text, decimals) {
  if (text === null || text === undefined) return "—";
  const match = DECIMAL.exec(String(text));
  if (!match) return String(text);
  const [, sign, wholeRaw, fractionRaw = ""] = match;
  const whole = wholeRaw.replace(/^0+(?=\d)/, "");
  let fraction = fractionRaw;
  if (decimals !== null && decimals !== undefined) {
    const kept = Math.max(0, Math.trunc(Number(decimals)));
    const significant = fraction.replace(/0+$/, "");
    fraction = significant.length > kept ? significant : fraction.slice(0, kept).padEnd(kept, "0");
  }
  const zero = /^0*$/.test(whole) && /^0*$/.test(fraction);
  const out = groupDigits(whole) + (fraction ? `.${fraction}` : "");
  return sign && !zero ? `-${out}` : out;
}

// Display decimals per asset code, loaded once from GET /v1/assets (public); until it answers (or when an asset is
// not in the catalog) amounts are shown exactly as the API gives them, grouped.
const assetDecimals = new Map();
let loading = null;

/** Loads the catalog's display precisions from the desk at `baseUrl` (once; later calls share the answer). */
export function loadAssets(baseUrl = "") {
  if (!loading) {
    loading = fetch(`${baseUrl}/v1/assets`)
      .then((response) => (response.ok ? response.json() : { items: [] }))
      .then(({ items }) => {
        for (const asset of items || []) {
          if (Number.isInteger(asset.display_decimals)) assetDecimals.set(asset.code, asset.display_decimals);
        }
      })
      .catch(() => {
        loading = null; // Try again on the next call.
      });
  }
  return loading;
}

/** Sets display precisions directly (tests; hosts that know them already). */
export function setAssetDecimals(entries) {
  for (const [code, decimals] of Object.entries(entries)) assetDecimals.set(code, decimals);
}

/** The display precision of `asset`, or undefined when unknown. */
export function displayDecimals(asset) {
  return assetDecimals.get(asset);
}

/** An amount of `asset` for people (see the display rule above). */
export function formatAmount(text, asset) {
  return formatDecimal(text, assetDecimals.get(asset));
}
