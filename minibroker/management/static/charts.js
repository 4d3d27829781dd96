"use strict";
// Line charts on a <canvas>, drawn by hand: no library, nothing fetched.
// Rule: a chart draws the points it is given and computes nothing but pixel positions.

const Charts = (() => {
  const COLORS = ["#e8590c", "#1c7ed6", "#2b8a3e", "#ae3ec9", "#f59f00"];

  function niceMax(value) {
    if (value <= 0) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (value <= step * power) return step * power;
    }
    return 10 * power;
  }

  function label(value) {
    if (Math.abs(value) >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (Math.abs(value) >= 1e3) return (value / 1e3).toFixed(1) + "k";
    return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }

  function clock(ms) {
    const d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()]
      .map((n) => String(n).padStart(2, "0")).join(":");
  }

  // series: [{name, points: [[timestampMs, value], ...]}], oldest point first.
  function draw(canvas, series) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = "11px system-ui, sans-serif";
    const left = 48, right = 10, top = 10, bottom = 22;
    const plotW = width - left - right, plotH = height - top - bottom;
    const all = series.flatMap((s) => s.points);
    if (all.length === 0 || plotW <= 0 || plotH <= 0) {
      g.fillStyle = "#5d6675";
      g.fillText("waiting for samples…", left, top + plotH / 2);
      return;
    }
    let t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
    if (t1 === t0) t0 = t1 - 1000;
    const top_ = niceMax(Math.max(...all.map((p) => p[1])));
    const low = Math.min(0, ...all.map((p) => p[1]));
    const x = (t) => left + ((t - t0) / (t1 - t0)) * plotW;
    const y = (v) => top + plotH - ((v - low) / (top_ - low)) * plotH;
    g.strokeStyle = "#d9dee6";
    g.fillStyle = "#5d6675";
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = low + ((top_ - low) * i) / 4, yy = Math.round(y(v)) + 0.5;
      g.beginPath(); g.moveTo(left, yy); g.lineTo(left + plotW, yy); g.stroke();
      g.fillText(label(v), 4, yy + 4);
    }
    g.fillText(clock(t0), left, height - 6);
    const end = clock(t1);
    g.fillText(end, left + plotW - g.measureText(end).width, height - 6);
    series.forEach((s, index) => {
      if (s.points.length === 0) return;
      g.strokeStyle = COLORS[index % COLORS.length];
      g.lineWidth = 2;
      g.beginPath();
      s.points.forEach(([t, v], i) => (i ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v))));
      g.stroke();
    });
  }

  function legend(names) {
    const box = document.createElement("div");
    box.className = "legend";
    names.forEach((name, index) => {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = COLORS[index % COLORS.length];
      item.append(swatch, name);
      box.append(item);
    });
    return box;
  }

  return { draw, legend };
})();
