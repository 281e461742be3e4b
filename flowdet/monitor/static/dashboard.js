// flowdet dashboard: polls /api/summary and draws one card per source (no libraries, no CDN).
"use strict";
const REFRESH_MS = Number(document.body.dataset.refreshMs) || 5000;
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, text) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v, unit, digits) {
  return v === null || v === undefined ? "–" : Number(v).toFixed(digits === undefined ? 1 : digits) + unit;
}

// Items per hour as bars: the last `hours` hours, oldest left; hour labels every 3 hours.
function chart(hourly, firstHour) {
  const W = 480, H = 150, L = 28, B = 18, T = 8;
  const svg = el("svg:svg", {class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none"});
  const top = Math.max(2, ...hourly);
  const max = top + (top % 2);   // even: the middle grid line is a whole number of items
  const bw = (W - L) / hourly.length;
  for (const frac of [0, 0.5, 1]) {
    const y = T + (H - T - B) * (1 - frac);
    svg.append(el("svg:line", {x1: L, x2: W, y1: y, y2: y, stroke: "#e3e6e9"}));
    svg.append(el("svg:text", {x: L - 4, y: y + 3, "text-anchor": "end"}, String(max * frac)));
  }
  hourly.forEach((n, i) => {
    const h = (H - T - B) * n / max;
    const start = new Date((firstHour + i * 3600) * 1000);
    const bar = el("svg:rect", {class: "bar", x: L + i * bw + 1, y: H - B - h, width: Math.max(1, bw - 2),
                                height: h, "data-count": n, "data-hour": start.toISOString()});
    bar.append(el("svg:title", {}, `${start.toLocaleString()}: ${n} item(s)`));
    svg.append(bar);
    if (i % 3 === 0) {
      svg.append(el("svg:text", {x: L + i * bw + bw / 2, y: H - 5, "text-anchor": "middle"},
                    String(start.getHours()).padStart(2, "0") + "h"));
    }
  });
  return svg;
}

function card(src, firstHour) {
  const h = src.health;
  const status = h ? h.status : "unknown";
  const c = el("section", {class: "card", "data-source": src.name, "data-status": status});
  const title = el("h2", {}, src.name);
  title.append(el("span", {class: `badge ${status}`}, status));
  c.append(title);
  const today = el("div", {class: "today"}, String(src.today));
  today.append(el("small", {}, ` today · ${src.total} in all`));
  c.append(today);
  const line = el("div", {class: "health"});
  if (h) {
    line.textContent = `${h.state} · ${fmt(h.fps, " fps")} · latency p50 ${fmt(h.latency_p50_ms, " ms", 0)}` +
      ` · last frame ${fmt(h.last_frame_age_s, " s")} ago · reconnects ${h.reconnects ?? "–"}` +
      ` · reported ${fmt(h.updated_s_ago, " s", 0)} ago`;
    if (h.error && status !== "up") line.append(el("div", {class: "err"}, h.error));
  } else {
    line.textContent = "no health reported";
  }
  c.append(line);
  if (h && h.has_frame) {
    c.append(el("img", {class: "frame", alt: `${src.name}: latest annotated frame`,
                        src: `/api/frame/${encodeURIComponent(src.name)}.jpg?t=${h.updated}`}));
  }
  c.append(chart(src.hourly, firstHour));
  return c;
}

async function refresh() {
  const err = document.getElementById("error");
  try {
    const r = await fetch("/api/summary", {cache: "no-store"});
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const data = await r.json();
    const main = document.getElementById("sources");
    main.replaceChildren(...data.sources.map(s => card(s, data.first_hour)));
    if (!data.sources.length) main.append(el("p", {}, "no counted items and no source reported yet"));
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    err.hidden = true;
  } catch (e) {
    err.textContent = `cannot load the counts (${e.message}); retrying`;
    err.hidden = false;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
