// The web UI's glue between the pages, htmx and Chart.js. No inline script anywhere:
// the pages' Content-Security-Policy allows only this server's own files.
(function () {
  "use strict";

  function csrf() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function toLogin() {
    window.location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }

  // A state change carries the session's CSRF token (the forms carry it too).
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.verb !== "get") event.detail.headers["X-CSRF-Token"] = csrf();
  });

  // A session that ended answers 401 to every fragment: log in again.
  document.addEventListener("htmx:responseError", function (event) {
    if (event.detail.xhr.status === 401) toLogin();
  });

  // The tree: a row's button shows or hides its children (loaded when shown).
  document.addEventListener("click", function (event) {
    const button = event.target.closest("button.expand");
    if (!button) return;
    const box = document.getElementById(button.dataset.target);
    if (!box) return;
    if (button.getAttribute("aria-expanded") === "true") {
      box.replaceChildren();
      button.setAttribute("aria-expanded", "false");
    } else {
      button.setAttribute("aria-expanded", "true");
      htmx.ajax("GET", button.dataset.src, { target: box, swap: "innerHTML" });
    }
  });

  // The chosen action's row stays marked while its panel shows.
  document.addEventListener("click", function (event) {
    const link = event.target.closest("a.name");
    if (!link) return;
    document.querySelectorAll(".row.chosen").forEach(function (row) { row.classList.remove("chosen"); });
    link.closest(".row").classList.add("chosen");
  });

  // A list loaded into a group by one of its phase links: its button shows it open.
  document.addEventListener("htmx:afterSwap", function (event) {
    const box = event.detail.target;
    if (!box.classList || !box.classList.contains("kids") || !box.id) return;
    const button = document.querySelector('button.expand[data-target="' + box.id + '"]');
    if (button && box.children.length) button.setAttribute("aria-expanded", "true");
  });

  const PHASE_COLORS = {
    queued: "#9aa5b1", waiting_for_resources: "#9aa5b1", initializing: "#56ccf2",
    running: "#2f80ed", succeeded: "#27ae60", failed: "#d64545", aborted: "#8e6c3a",
    timed_out: "#e09b2d",
  };

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) { toLogin(); return null; }
    if (!response.ok) return null;
    return response.json();
  }

  function seconds(value) {
    if (value < 60) return value.toFixed(value < 10 ? 1 : 0) + " s";
    if (value < 3600) return Math.floor(value / 60) + "m " + String(Math.floor(value % 60)).padStart(2, "0") + "s";
    return Math.floor(value / 3600) + "h " + String(Math.floor((value % 3600) / 60)).padStart(2, "0") + "m";
  }

  // A run's timeline: one row per replica, one bar per attempt, coloured by phase.
  function timeline(canvas) {
    let chart = null;
    let timer = null;
    const note = document.getElementById("timeline-note");
    async function load() {
      const data = await getJSON(canvas.dataset.src);
      if (!data) return;
      const byPhase = {};
      for (const bar of data.bars) {
        if (!byPhase[bar.phase]) {
          byPhase[bar.phase] = {
            label: bar.phase, data: [], grouped: false, borderSkipped: false,
            borderColor: "#ffffff", borderWidth: 1,
            backgroundColor: PHASE_COLORS[bar.phase] || "#888", barPercentage: 0.7,
          };
        }
        byPhase[bar.phase].data.push({ x: [bar.start, bar.end], y: bar.replica, id: bar.id, task: bar.task });
      }
      canvas.parentElement.style.height = Math.max(160, 70 + 34 * data.replicas.length) + "px";
      if (note) {
        note.textContent = data.shown < data.total
          ? "Showing " + data.shown + " of " + data.total + " actions (the first to end, and those running)."
          : data.total + " actions, " + data.replicas.length + " replicas.";
      }
      const datasets = Object.values(byPhase);
      if (chart) {
        chart.data.labels = data.replicas;
        chart.data.datasets = datasets;
        chart.options.scales.x.max = Math.max(data.end, 0.001);
        chart.update("none");
      } else {
        chart = new Chart(canvas, {
          type: "bar",
          data: { labels: data.replicas, datasets: datasets },
          options: {
            indexAxis: "y", animation: false, responsive: true, maintainAspectRatio: false,
            scales: {
              x: { type: "linear", min: 0, max: Math.max(data.end, 0.001),
                   title: { display: true, text: "seconds since the run was created" },
                   ticks: { callback: function (v) { return seconds(v); } } },
              y: { type: "category", title: { display: true, text: "replica" } },
            },
            plugins: {
              tooltip: { callbacks: { label: function (item) {
                const raw = item.raw;
                return raw.task + " (" + raw.id + "): " + seconds(raw.x[1] - raw.x[0]) + ", " + item.dataset.label;
              } } },
            },
            onClick: function (_event, elements) {
              if (!elements.length) return;
              const raw = chart.data.datasets[elements[0].datasetIndex].data[elements[0].index];
              window.location.assign("/runs/" + canvas.dataset.run + "/actions/" + encodeURIComponent(raw.id));
            },
          },
        });
      }
      if (data.live && timer === null) timer = setInterval(load, 10000);
      if (!data.live && timer !== null) { clearInterval(timer); timer = null; }
    }
    load();
  }

  // A tick of the hour chart (minutes, negative): "now", "40 s", "12 min".
  function ago(value) {
    if (value === 0) return "now";
    const minutes = -value;
    if (minutes < 1) return Math.round(minutes * 60) + " s";
    return (Math.round(minutes * 10) / 10) + " min";
  }

  // An environment's last hour: tasks/s, queue length and replicas.
  function history(canvas) {
    let chart = null;
    async function load() {
      const data = await getJSON(canvas.dataset.src);
      if (!data) return;
      const points = data.environments[canvas.dataset.environment] || [];
      const now = Date.now() / 1000;
      const at = function (p) { return (p[0] - now) / 60; };
      const series = [
        { label: "tasks/s", yAxisID: "rate", borderColor: "#2f80ed", data: points.map(function (p) { return { x: at(p), y: p[1] }; }) },
        { label: "queue length", yAxisID: "queue", borderColor: "#e09b2d", data: points.map(function (p) { return { x: at(p), y: p[2] }; }) },
        { label: "replicas", yAxisID: "replicas", borderColor: "#27ae60", stepped: true, data: points.map(function (p) { return { x: at(p), y: p[3] }; }) },
      ];
      series.forEach(function (s) { s.pointRadius = 2; s.borderWidth = 2; s.backgroundColor = s.borderColor; });
      // The span there is, from a minute up to the hour.
      const earliest = points.length ? at(points[0]) : -1;
      const span = Math.max(-60, Math.min(-1, Math.floor(earliest)));
      if (chart) {
        chart.data.datasets = series;
        chart.options.scales.x.min = span;
        chart.update("none");
        return;
      }
      chart = new Chart(canvas, {
        type: "line",
        data: { datasets: series },
        options: {
          animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
          interaction: { mode: "nearest", axis: "x", intersect: false },
          scales: {
            x: { type: "linear", min: span, max: 0, title: { display: true, text: "time ago" },
                 ticks: { callback: ago } },
            rate: { type: "linear", position: "left", beginAtZero: true, title: { display: true, text: "tasks/s" } },
            queue: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0 }, title: { display: true, text: "queue" } },
            replicas: { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0 }, title: { display: true, text: "replicas" } },
          },
        },
      });
    }
    load();
    setInterval(load, 10000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const canvas = document.getElementById("timeline");
    if (canvas) timeline(canvas);
    document.querySelectorAll("canvas.history").forEach(history);
  });
})();
