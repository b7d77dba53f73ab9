// Hand-written SVG charts for the console. Prices and values are converted to numbers only to place them on the
// chart; every figure shown as text is the API's decimal string.

const NS = "http://www.w3.org/2000/svg";

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** Round, readable tick values between min and max. */
function ticks(min, max, count = 4) {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(v);
  return out;
}

export function compact(value) {
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toFixed(2)}B`;
  if (abs >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

function svg(width, height, label, body) {
  return `<svg xmlns="${NS}" viewBox="0 0 ${width} ${height}" width="100%" height="${height}" role="img" aria-label="${esc(label)}">${body}</svg>`;
}

/**
 * A price chart: `points` = [{t: ms, bid: number, ask: number}], drawn as a bid/ask band with a mid line.
 */
export function priceChart(element, points, { label, width = element.clientWidth || 640, height = 220 } = {}) {
  if (points.length < 2) {
    element.innerHTML = `<div class="chart-empty">Collecting prices…</div>`;
    return;
  }
  const pad = { left: 8, right: 64, top: 10, bottom: 22 };
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  let lo = Math.min(...points.map((p) => p.bid));
  let hi = Math.max(...points.map((p) => p.ask));
  const margin = (hi - lo) * 0.15 || hi * 0.0005 || 1;
  lo -= margin;
  hi += margin;
  const x = (t) => pad.left + ((t - t0) / Math.max(t1 - t0, 1)) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - (v - lo) / (hi - lo)) * (height - pad.top - pad.bottom);
  const path = (key) => points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join("");
  const band =
    points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.ask).toFixed(1)}`).join("") +
    points
      .slice()
      .reverse()
      .map((p) => `L${x(p.t).toFixed(1)},${y(p.bid).toFixed(1)}`)
      .join("") +
    "Z";
  const grid = ticks(lo, hi)
    .map((v) => `<line class="gridline" x1="${pad.left}" x2="${width - pad.right}" y1="${y(v)}" y2="${y(v)}"/><text class="axis" x="${width - pad.right + 6}" y="${y(v) + 4}">${esc(compact(v))}</text>`)
    .join("");
  const times = [t0, (t0 + t1) / 2, t1]
    .map((t, i) => `<text class="axis" x="${x(t)}" y="${height - 6}" text-anchor="${["start", "middle", "end"][i]}">${new Date(t).toLocaleTimeString([], { hour12: false })}</text>`)
    .join("");
  const last = points[points.length - 1];
  const mid = points.map((p) => ({ t: p.t, mid: (p.bid + p.ask) / 2 }));
  const midPath = mid.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.mid).toFixed(1)}`).join("");
  element.innerHTML = svg(
    width,
    height,
    label,
    `${grid}${times}<path class="band" d="${band}"/><path class="ask-line" d="${path("ask")}"/><path class="bid-line" d="${path("bid")}"/>` +
      `<path class="mid-line" d="${midPath}"/><circle class="dot" cx="${x(last.t)}" cy="${y((last.bid + last.ask) / 2)}" r="3.5"/>`,
  );
}

/**
 * Horizontal diverging bars: `rows` = [{label, value: number, text}], long to the right, short to the left.
 */
export function divergingBars(element, rows, { label, width = element.clientWidth || 640 } = {}) {
  const shown = rows.filter((row) => row.value !== 0);
  if (!shown.length) {
    element.innerHTML = `<div class="chart-empty">The desk is flat: no positions</div>`;
    return;
  }
  const rowHeight = 26;
  const height = shown.length * rowHeight + 8;
  const labelWidth = 56;
  const valueWidth = 120;
  const max = Math.max(...shown.map((row) => Math.abs(row.value)));
  const span = (width - labelWidth - valueWidth) / 2;
  const zero = labelWidth + span;
  const body = shown
    .map((row, i) => {
      const w = (Math.abs(row.value) / max) * (span - 4);
      const y = 4 + i * rowHeight;
      const bx = row.value >= 0 ? zero : zero - w;
      return `<text class="bar-label" x="0" y="${y + 16}">${esc(row.label)}</text>` +
        `<rect class="${row.value >= 0 ? "long" : "short"}" x="${bx.toFixed(1)}" y="${y + 4}" width="${Math.max(w, 1).toFixed(1)}" height="${rowHeight - 10}" rx="3"><title>${esc(row.label)}: ${esc(row.text)}</title></rect>` +
        `<text class="bar-value" x="${width}" y="${y + 16}" text-anchor="end">${esc(row.text)}</text>`;
    })
    .join("");
  element.innerHTML = svg(width, height, label, `<line class="zero" x1="${zero}" x2="${zero}" y1="0" y2="${height}"/>${body}`);
}

/**
 * Stacked columns per time bucket: `buckets` = [{t, a: number, b: number}] (a = buys, b = sells) on the right-hand
 * USD axis, plus an optional line series `line` (e.g. RFQs per bucket) on its own left-hand axis, so a count of
 * a few RFQs is not flattened against millions of USD.
 */
export function flowChart(element, buckets, { label, width = element.clientWidth || 640, height = 180, line = null, lineUnit = "", barUnit = "" } = {}) {
  const pad = { left: line ? 40 : 8, right: 56, top: 18, bottom: 22 };
  const max = Math.max(1, ...buckets.map((b) => b.a + b.b));
  const n = buckets.length;
  const slot = (width - pad.left - pad.right) / n;
  const y = (v) => pad.top + (1 - v / max) * (height - pad.top - pad.bottom);
  const columns = buckets
    .map((b, i) => {
      const x = pad.left + i * slot + slot * 0.15;
      const w = slot * 0.7;
      const hA = y(0) - y(b.a);
      const hB = y(0) - y(b.b);
      return `<rect class="buy" x="${x.toFixed(1)}" y="${(y(0) - hA).toFixed(1)}" width="${w.toFixed(1)}" height="${hA.toFixed(1)}"/>` +
        `<rect class="sell" x="${x.toFixed(1)}" y="${(y(0) - hA - hB).toFixed(1)}" width="${w.toFixed(1)}" height="${hB.toFixed(1)}"/>`;
    })
    .join("");
  const grid = ticks(0, max, 3)
    .map((v) => `<line class="gridline" x1="${pad.left}" x2="${width - pad.right}" y1="${y(v)}" y2="${y(v)}"/><text class="axis" x="${width - pad.right + 6}" y="${y(v) + 4}">${esc(compact(v))}</text>`)
    .join("") + (barUnit ? `<text class="axis" x="${width - pad.right + 6}" y="10">${esc(barUnit)}</text>` : "");
  let lineSvg = "";
  if (line) {
    const lmax = Math.max(4, ...line);
    const ly = (v) => pad.top + (1 - v / lmax) * (height - pad.top - pad.bottom);
    const cx = (i) => (pad.left + i * slot + slot / 2).toFixed(1);
    const axis = ticks(0, lmax, 2)
      .filter((v) => Number.isInteger(v))
      .map((v) => `<text class="axis rfq-axis" x="${pad.left - 6}" y="${ly(v) + 4}" text-anchor="end">${v}</text>`)
      .join("");
    lineSvg = `${axis}<text class="axis rfq-axis" x="0" y="10">${esc(lineUnit)}</text>` +
      `<path class="rfq-line" d="${line.map((v, i) => `${i ? "L" : "M"}${cx(i)},${ly(v).toFixed(1)}`).join("")}"/>` +
      line.map((v, i) => (v ? `<circle class="rfq-dot" cx="${cx(i)}" cy="${ly(v).toFixed(1)}" r="2.5"><title>${v}</title></circle>` : "")).join("");
  }
  const times = [0, Math.floor(n / 2), n - 1]
    .map((i, k) => `<text class="axis" x="${pad.left + i * slot + slot / 2}" y="${height - 6}" text-anchor="${["start", "middle", "end"][k]}">${new Date(buckets[i].t).toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit" })}</text>`)
    .join("");
  element.innerHTML = svg(width, height, label, `${grid}${columns}${lineSvg}${times}`);
}

/** A small utilization meter: used / limit, both numbers. */
export function meter(used, limit) {
  const fraction = limit > 0 ? Math.min(used / limit, 1) : 0;
  const level = fraction > 0.9 ? "high" : fraction > 0.6 ? "mid" : "low";
  return `<svg xmlns="${NS}" viewBox="0 0 100 8" width="100" height="8" role="img" aria-label="${Math.round(fraction * 100)}% used"><rect class="meter-bg" width="100" height="8" rx="4"/><rect class="meter-${level}" width="${(fraction * 100).toFixed(1)}" height="8" rx="4"/></svg>`;
}
