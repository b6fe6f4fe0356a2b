// Charts drawn as SVG with DOM APIs: a time series (lines or bars) that redraws at its container's width.
import { s, h } from "./dom.js";

const HEIGHT = 170;
const PAD = { top: 10, right: 10, bottom: 22, left: 46 };

/** The axis top: four steps of 1, 2, 2.5 or 5 times a power of ten, so that every tick reads well. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const quarter = value / 4;
  const power = 10 ** Math.floor(Math.log10(quarter));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= quarter) return 4 * step * power;
  return 40 * power;
}

function tickLabel(date, spanMs) {
  if (spanMs > 2 * 86400000) return date.toLocaleDateString("en-GB", { day: "numeric", month: "short" });
  return date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
}

function draw(svg, width, { buckets, series, format, kind, bucketMs }) {
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", HEIGHT);
  const innerW = Math.max(10, width - PAD.left - PAD.right);
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const stacked = kind === "bars";
  let top = 0;
  for (let i = 0; i < buckets.length; i++) {
    if (stacked) top = Math.max(top, series.reduce((sum, line) => sum + (line.values[i] || 0), 0));
    else for (const line of series) if (line.values[i] != null) top = Math.max(top, line.values[i]);
  }
  const max = niceMax(top);
  const n = buckets.length;
  const step = n > 0 ? innerW / n : innerW;
  const x = (i) => PAD.left + step * i + step / 2;
  const y = (v) => PAD.top + innerH - (v / max) * innerH;

  for (let t = 0; t <= 4; t++) {
    const value = (max * t) / 4;
    svg.append(s("line", { class: "gridline", x1: PAD.left, x2: width - PAD.right, y1: y(value), y2: y(value) }));
    svg.append(s("text", { class: "axis", x: PAD.left - 6, y: y(value) + 3.5, "text-anchor": "end" }, format(value, true)));
  }
  const span = n > 0 ? buckets[n - 1] - buckets[0] + bucketMs : 0;
  const labels = Math.max(1, Math.min(n, Math.floor(innerW / 70)));
  for (let k = 0; k < labels && n > 0; k++) {
    const i = labels === 1 ? 0 : Math.round((k * (n - 1)) / (labels - 1));
    svg.append(s("text", { class: "axis", x: x(i), y: HEIGHT - 6, "text-anchor": "middle" }, tickLabel(new Date(buckets[i]), span)));
  }
  if (stacked) {
    const barW = Math.max(1, Math.min(28, step * 0.7));
    for (let i = 0; i < n; i++) {
      let base = 0;
      series.forEach((line, index) => {
        const value = line.values[i] || 0;
        if (value <= 0) return;
        const rect = s("rect", { class: ["bar", "pt", `c${line.color ?? index}`], x: x(i) - barW / 2, y: y(base + value), width: barW, height: Math.max(1, y(base) - y(base + value)), rx: 2 },
          s("title", null, `${new Date(buckets[i]).toLocaleString("en-GB")} · ${line.name}: ${format(value)}`));
        rect.dataset.value = String(value);
        svg.append(rect);
        base += value;
      });
    }
    return;
  }
  series.forEach((line, index) => {
    const color = `c${line.color ?? index}`;
    let path = "";
    let pen = false;
    for (let i = 0; i < n; i++) {
      const value = line.values[i];
      if (value == null) { pen = false; continue; }
      path += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(value).toFixed(1)}`;
      pen = true;
    }
    if (path) svg.append(s("path", { class: ["line", color], d: path }));
    for (let i = 0; i < n; i++) {
      const value = line.values[i];
      if (value == null || (line.markZero === false && value === 0)) continue;
      const dot = s("circle", { class: ["pt", color], cx: x(i), cy: y(value), r: n > 60 ? 2 : 3 },
        s("title", null, `${new Date(buckets[i]).toLocaleString("en-GB")} · ${line.name}: ${format(value)}`));
      dot.dataset.value = String(value);
      dot.dataset.series = line.name;
      svg.append(dot);
    }
  });
}

/**
 * A chart card: a title, a headline figure, a legend and the SVG, drawn at the card's width.
 * `series`: [{name, values (one per bucket, null for none), color}]; `kind`: "lines" or "bars".
 */
export function timeChart({ title, total, buckets, series, format, kind = "lines", bucketMs = 3600000, id }) {
  const svg = s("svg", { class: "chart", role: "img", "aria-label": title });
  if (id) svg.id = id;
  const box = h("div", { class: "chart-box" }, svg);
  const card = h("div", { class: "card chart-card" },
    h("div", { class: "chart-head" }, h("h2", null, title), total !== undefined ? h("span", { class: "total" }, total) : null),
    series.length > 1 ? h("div", { class: "legend" }, series.map((line, index) =>
      h("span", null, h("span", { class: ["swatch", `c${line.color ?? index}`] }), line.name))) : null,
    box);
  const options = { buckets, series, format, kind, bucketMs };
  let lastWidth = 0;
  const redraw = () => {
    const width = Math.floor(box.clientWidth || 600);
    if (width === lastWidth) return;
    lastWidth = width;
    draw(svg, width, options);
  };
  // Drawn once now (at a guessed width, so the points exist at once), then at the real width.
  draw(svg, 600, options);
  requestAnimationFrame(redraw);
  if (typeof ResizeObserver === "function") new ResizeObserver(redraw).observe(box);
  return card;
}
