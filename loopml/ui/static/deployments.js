// The traffic charts of a deployment page: requests per minute, latency percentiles and error rate per role.
// The server buckets the prediction log (at most a few hundred points per series); this only draws it.
(function () {
  "use strict";
  var COLOURS = { main: "#0969da", canary: "#bf8700", shadow: "#8250df" };
  var DASH = { p50: [], p95: [6, 3], p99: [2, 3] };

  function seriesOf(data, metric) {
    var out = [];
    Object.keys(data.series).forEach(function (role) {
      var s = data.series[role];
      var keys = metric === "latency" ? ["p50", "p95", "p99"] : [metric];
      keys.forEach(function (key) {
        out.push({
          label: metric === "latency" ? role + " " + key : role,
          stroke: COLOURS[role] || "#57606a",
          dash: metric === "latency" ? DASH[key] : [],
          width: 1.5,
          spanGaps: false,
          values: s[key]
        });
      });
    });
    return out;
  }

  function draw(figure, data) {
    var metric = figure.getAttribute("data-metric");
    var series = seriesOf(data, metric);
    var opts = {
      width: Math.max(figure.clientWidth, 320),
      height: 220,
      series: [{}].concat(series.map(function (s) {
        return { label: s.label, stroke: s.stroke, dash: s.dash, width: s.width, spanGaps: s.spanGaps };
      })),
      axes: [{}, { label: figure.getAttribute("data-unit") }],
      scales: { x: { time: true } }
    };
    var columns = [data.x].concat(series.map(function (s) { return s.values; }));
    figure.setAttribute("data-series", String(series.length));
    return new uPlot(opts, columns, figure);
  }

  function load(section) {
    var summary = document.getElementById("traffic-summary");
    fetch(section.getAttribute("data-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        if (!res.ok) { throw new Error("the chart data answered " + res.status); }
        return res.json();
      })
      .then(function (data) {
        var roles = Object.keys(data.series);
        summary.textContent = data.requests + " request" + (data.requests === 1 ? "" : "s") + " in the " + data.window +
          ", in buckets of " + (data.bucket_s / 60) + " min" + (roles.length ? " (" + roles.join(", ") + ")" : "") +
          (data.limited ? "; only the first " + data.requests + " requests of the window are charted" : "") + ".";
        if (!roles.length) { return; }
        section.querySelectorAll("figure.chart").forEach(function (figure) { draw(figure, data); });
        section.setAttribute("data-drawn", "true");
      })
      .catch(function (err) { summary.textContent = "Could not load the chart data: " + err.message; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var section = document.getElementById("traffic");
    if (section) { load(section); }
  });
})();
