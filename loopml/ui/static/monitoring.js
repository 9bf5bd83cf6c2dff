// A monitor's charts: performance, error rate and latency over its checks, from the page's JSON data block.
(function () {
  "use strict";
  var block = document.getElementById("chart-data");
  if (!block || typeof uPlot === "undefined") { return; }
  var charts = JSON.parse(block.textContent || "[]");
  var colours = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a", "#e16f24"];
  charts.forEach(function (chart) {
    var holder = document.querySelector('[data-chart="' + chart.id + '"]');
    if (!holder) { return; }
    var names = Object.keys(chart.series);
    var series = [{}].concat(names.map(function (name, i) {
      return { label: name, stroke: colours[i % colours.length], width: 2, points: { show: true, size: 6 } };
    }));
    var data = [chart.x].concat(names.map(function (name) { return chart.series[name]; }));
    var width = Math.max(320, Math.min(holder.clientWidth || 900, 1100));
    new uPlot({ width: width, height: 220, series: series, scales: { x: { time: true } } }, data, holder);
    holder.setAttribute("data-drawn", String(chart.x.length));
  });
})();
