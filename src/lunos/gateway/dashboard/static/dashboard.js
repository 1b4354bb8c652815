// Draws the Usage page's charts with uPlot from the JSON in #usage-data.
// No inline script: this file is loaded with `defer` and reads data from the page.
(function () {
  "use strict";

  var COLORS = ["#3355d1", "#e07b39", "#2a9d6f", "#c2417a", "#7a5af5", "#c9a227", "#8a94a6"];

  function dollars(v) {
    if (v === 0) { return "$0"; }
    if (v >= 1) { return "$" + v.toFixed(2); }
    if (v >= 0.01) { return "$" + v.toFixed(3); }
    return "$" + v.toExponential(1);
  }

  function formatter(unit) {
    if (unit === "$") {
      return function (u, v) { return v == null ? "—" : dollars(v); };
    }
    return function (u, v) { return v == null ? "—" : v.toLocaleString(); };
  }

  function options(chart, width) {
    var fmt = formatter(chart.unit);
    var series = [{ value: function (u, ts) {
      return ts == null ? "—" : new Date(ts * 1000).toISOString().slice(0, 10);
    } }];
    chart.series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      series.push({
        label: s.label,
        stroke: color,
        width: 2,
        fill: chart.series.length === 1 ? color + "22" : undefined,
        points: { size: 5 },
        value: fmt
      });
    });
    return {
      width: width,
      height: 240,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      axes: [
        { space: 60 },
        { size: 80, values: function (u, vals) { return vals.map(function (v) { return fmt(u, v); }); } }
      ],
      series: series,
      legend: { live: true }
    };
  }

  function draw() {
    var source = document.getElementById("usage-data");
    if (!source || typeof uPlot === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var plots = [];
    data.charts.forEach(function (chart) {
      var el = document.getElementById("chart-" + chart.id);
      if (!el) {
        return;
      }
      var values = [data.x].concat(chart.series.map(function (s) { return s.values; }));
      if (chart.series.length === 0) {
        var empty = document.createElement("p");
        empty.className = "empty";
        empty.textContent = "No data in this period.";
        el.appendChild(empty);
        return;
      }
      plots.push({ el: el, plot: new uPlot(options(chart, el.clientWidth), values, el) });
    });
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        plots.forEach(function (p) { p.plot.setSize({ width: p.el.clientWidth, height: 240 }); });
      }, 150);
    });
    document.body.setAttribute("data-charts", String(plots.length));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
}());
