// The live dashboard's per-minute charts (fans admitted, places sold), drawn as
// small SVG line charts by hand: no chart library for two polylines. The pure
// part (no DOM) is what Node tests import, as the browser does.

/**
 * A series as an SVG polyline's points in a `width` x `height` box: x spread
 * evenly over the minutes, y from 0 (bottom) to the series' peak (top; at
 * least 1, so an all-zero series lies on the bottom edge). Empty for no
 * points; one point is drawn as a flat line across the box.
 */
export function polylinePoints(values, width, height) {
  if (values.length === 0) return "";
  const peak = Math.max(1, ...values);
  const y = (v) => round(height - (v / peak) * height);
  if (values.length === 1) return `0,${y(values[0])} ${width},${y(values[0])}`;
  const step = width / (values.length - 1);
  return values.map((v, i) => `${round(i * step)},${y(v)}`).join(" ");
}

/** What a chart says in words (its accessible name): the span, the latest minute and the peak. */
export function seriesSummary(title, values) {
  if (values.length === 0) return `${title}: nothing yet.`;
  const latest = values[values.length - 1];
  return `${title} over the last ${values.length} minute${values.length === 1 ? "" : "s"}: latest ${latest}, peak ${Math.max(...values)}.`;
}

const round = (n) => Math.round(n * 10) / 10;

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 300;
const HEIGHT = 80;

/** A figure with the series drawn as a line, its summary as the accessible name and caption; `data-latest` and `data-total` hold the latest value and the sum. */
export function historyChart(title, values) {
  const figure = document.createElement("figure");
  figure.className = "history-chart";
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", seriesSummary(title, values));
  svg.dataset.latest = String(values.length === 0 ? 0 : values[values.length - 1]);
  svg.dataset.total = String(values.reduce((sum, v) => sum + v, 0));
  const axis = document.createElementNS(SVG, "line");
  axis.setAttribute("x1", "0");
  axis.setAttribute("y1", String(HEIGHT));
  axis.setAttribute("x2", String(WIDTH));
  axis.setAttribute("y2", String(HEIGHT));
  axis.setAttribute("class", "axis");
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", polylinePoints(values, WIDTH, HEIGHT));
  line.setAttribute("class", "series");
  line.setAttribute("vector-effect", "non-scaling-stroke");
  svg.append(axis, line);
  const caption = document.createElement("figcaption");
  caption.textContent = seriesSummary(title, values);
  figure.append(svg, caption);
  return figure;
}
