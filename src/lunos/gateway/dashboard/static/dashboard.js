// The dashboard's one script (no inline script anywhere): draws the Usage page's charts with
// uPlot from the JSON in #usage-data, shows times in UTC or local time (the user's choice,
// kept in localStorage), and makes the Copy buttons work. Loaded with `defer` on every page.
(function () {
  "use strict";

  // One colour per label, the same on every chart and every page: picked by a hash of
  // the label ("other" is always grey).
  var COLORS = ["#3355d1", "#e07b39", "#2a9d6f", "#c2417a", "#7a5af5", "#c9a227",
                "#1f8fb3", "#b5532f", "#5b8c2a", "#9c4fb0", "#d4475b", "#4a6fa5"];

  function colorOf(label) {
    if (label === "other") { return "#8a94a6"; }
    var h = 0;
    for (var i = 0; i < label.length; i++) { h = (h * 31 + label.charCodeAt(i)) >>> 0; }
    return COLORS[h % COLORS.length];
  }

  function dollars(v) {  // never scientific notation
    if (v === 0) { return "$0"; }
    var digits = v >= 1 ? 2 : Math.min(8, Math.max(2, 1 - Math.floor(Math.log10(Math.abs(v)))));
    return "$" + v.toFixed(digits);
  }

  function number(v) {
    return Math.abs(v) >= 1e6 ? (v / 1e6).toFixed(1) + "M" : Math.abs(v) >= 1e4
      ? (v / 1e3).toFixed(0) + "k" : v.toLocaleString("en-US", { maximumFractionDigits: 2 });
  }

  function formatter(unit) {
    return unit === "$" ? dollars : number;
  }

  function timeLabel(per) {
    return function (u, ts) {
      if (ts == null) { return "—"; }
      var iso = new Date(ts * 1000).toISOString();
      return per === "hour" ? iso.slice(0, 13).replace("T", " ") + ":00" : iso.slice(0, 10);
    };
  }

  // Bars are stacked: series i is drawn as the sum of series i..n-1, the first (largest
  // sum) first, so each later one covers all but its own band; the legend shows each
  // series' own value.
  function stacked(series) {
    var sums = series.map(function (s) { return s.values.slice(); });
    for (var i = sums.length - 2; i >= 0; i--) {
      for (var j = 0; j < sums[i].length; j++) { sums[i][j] += sums[i + 1][j]; }
    }
    return sums;
  }

  function options(chart, width, per, count) {
    var fmt = formatter(chart.unit);
    var series = [{ label: per === "hour" ? "Hour (UTC)" : "Day (UTC)", value: timeLabel(per) }];
    var bars = chart.bars && uPlot.paths && uPlot.paths.bars
      ? uPlot.paths.bars({ size: [0.7, 60], align: 0 }) : null;
    chart.series.forEach(function (s) {
      var color = colorOf(s.label);
      series.push({
        label: s.label,
        stroke: color,
        width: bars ? 1 : 2,
        fill: bars ? color : undefined,
        paths: bars || undefined,
        points: { show: !bars && count < 60, size: 5 },
        value: function (u, v, si, idx) {
          return idx == null ? "—" : fmt(s.values[idx]);
        }
      });
    });
    var step = per === "hour" ? 3600 : 86400;
    return {
      width: width,
      height: 240,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      scales: {
        x: { time: true, range: function (u, min, max) { return [min - step / 2, max + step / 2]; } },
        y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } }
      },
      axes: [
        { space: 60 },
        { size: 84, values: function (u, vals) { return vals.map(function (v) { return fmt(v); }); } }
      ],
      series: series,
      legend: { live: true }
    };
  }

  // A click on a chart opens Logs for the hour or day under the cursor (for the "by app"
  // chart, that app's requests when only one app has any then).
  function drill(plot, data, chart) {
    var idx = plot.cursor.idx;
    if (idx == null) { return; }
    var step = data.per === "hour" ? 3600 : 86400;
    function iso(ts) { return new Date(ts * 1000).toISOString().slice(0, 19); }
    var query = "since=" + iso(data.x[idx]) + "&until=" + iso(data.x[idx] + step);
    var busy = chart.series.filter(function (s) { return s.values[idx] > 0; });
    if (busy.length === 1 && busy[0].label !== "other" && (chart.id === "requests" || chart.id === "cost" || chart.id === "apps")) {
      query += "&" + (chart.id === "apps" ? "app" : "model") + "=" + encodeURIComponent(busy[0].label);
    }
    window.location.href = "/dashboard/logs?" + query;
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
      var values = [data.x].concat(chart.bars ? stacked(chart.series)
        : chart.series.map(function (s) { return s.values; }));
      if (chart.series.length === 0) {
        var empty = document.createElement("p");
        empty.className = "empty";
        empty.textContent = "No data in this period.";
        el.appendChild(empty);
        return;
      }
      var plot = new uPlot(options(chart, el.clientWidth, data.per, data.x.length), values, el);
      plot.over.addEventListener("click", function () { drill(plot, data, chart); });
      plot.over.title = "Click to see this " + data.per + "'s requests";
      plots.push({ el: el, plot: plot });
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

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function showTimes() {
    var local = window.localStorage && localStorage.getItem("lunos-time") === "local";
    var button = document.getElementById("tz-toggle");
    if (button) { button.textContent = local ? "Local time" : "UTC"; }
    document.querySelectorAll("[data-utc]").forEach(function (el) {
      var d = new Date(el.getAttribute("data-utc"));
      if (isNaN(d)) { return; }
      el.textContent = local
        ? d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
          pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds())
        : d.toISOString().slice(0, 19).replace("T", " ") + " UTC";
    });
  }

  function wire() {
    var button = document.getElementById("tz-toggle");
    if (button) {
      button.addEventListener("click", function () {
        var local = localStorage.getItem("lunos-time") === "local";
        localStorage.setItem("lunos-time", local ? "utc" : "local");
        showTimes();
      });
    }
    document.querySelectorAll("[data-copy]").forEach(function (el) {
      el.addEventListener("click", function () {
        var source = document.getElementById(el.getAttribute("data-copy"));
        if (source && navigator.clipboard) {
          navigator.clipboard.writeText(source.textContent).then(function () {
            el.textContent = "Copied";
          });
        }
      });
    });
    showTimes();
    draw();
  }

  if (document.readyState === "complete") {
    wire();
  } else {
    document.addEventListener("DOMContentLoaded", wire);  // after every deferred script (uPlot)
  }
}());
