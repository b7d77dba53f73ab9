// Unit tests of the web faces' number formatting (crates/otcd-http/web/components/format.js), run with
// `node --test` by crates/otcd-http/tests/js.rs. The module is loaded from its source as a data: URL so that it needs
// no package.json (it is served to browsers as it is).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const source = readFileSync(new URL("../../web/components/format.js", import.meta.url), "utf8");
const format = await import(`data:text/javascript,${encodeURIComponent(source)}`);

test("groups thousands without touching a digit", () => {
  assert.equal(format.formatDecimal("1234567.891"), "1,234,567.891");
  assert.equal(format.formatDecimal("999"), "999");
  assert.equal(format.formatDecimal("-1000"), "-1,000");
  assert.equal(format.formatDecimal("0001000.5"), "1,000.5");
});

test("shows at least the display decimals and never rounds", () => {
  assert.equal(format.formatDecimal("500.000000000000000000", 6), "500.000000");
  assert.equal(format.formatDecimal("0.000000000000000001", 6), "0.000000000000000001");
  assert.equal(format.formatDecimal("1.123456789000000000", 6), "1.123456789");
  assert.equal(format.formatDecimal("1.5", 2), "1.50");
  assert.equal(format.formatDecimal("12", 2), "12.00");
  assert.equal(format.formatDecimal("1.999999999", 2), "1.999999999");
  assert.equal(format.formatDecimal("-0.000", 2), "0.00");
  assert.equal(format.formatDecimal("7.25", 0), "7.25");
  assert.equal(format.formatDecimal("7.00", 0), "7");
});

test("amounts beyond the float range keep every digit", () => {
  // 2^53 + 1 is the first integer a float cannot hold.
  assert.equal(format.formatDecimal("9007199254740993.000000000000000001", 6), "9,007,199,254,740,993.000000000000000001");
  assert.equal(format.formatDecimal("123456789012345678901234567890.10", 2), "123,456,789,012,345,678,901,234,567,890.10");
});

test("anything that is not a decimal string is shown as it is", () => {
  assert.equal(format.formatDecimal(null), "—");
  assert.equal(format.formatDecimal(undefined, 2), "—");
  assert.equal(format.formatDecimal("n/a", 2), "n/a");
  assert.equal(format.formatDecimal("1e5", 2), "1e5");
  assert.equal(format.formatDecimal("<b>", 2), "<b>");
});

test("amounts use the asset's display precision once known", () => {
  assert.equal(format.formatAmount("500.000000000000000000", "ETH"), "500.000000000000000000");
  format.setAssetDecimals({ ETH: 6, USD: 2, BTC: 8 });
  assert.equal(format.formatAmount("500.000000000000000000", "ETH"), "500.000000");
  assert.equal(format.formatAmount("1234567.8", "USD"), "1,234,567.80");
  assert.equal(format.formatAmount("0.25000000", "BTC"), "0.25000000");
  assert.equal(format.displayDecimals("XYZ"), undefined);
});
