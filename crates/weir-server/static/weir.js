// Weir's only script: local times, and live logs and states over server-sent events.
(function () {
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) { el.textContent = d.toLocaleString(); el.title = el.getAttribute("datetime"); }
    });
  }
  localTimes(document);
  var logs = document.getElementById("logs");
  if (!logs || !window.EventSource) return;
  var runId = logs.getAttribute("data-run");
  var stateEl = document.getElementById("run-state");
  var empty = document.getElementById("logs-empty");
  var es = new EventSource("/api/v1/flow_runs/" + runId + "/stream");
  es.addEventListener("log", function (ev) {
    var line = JSON.parse(ev.data);
    if (empty) { empty.remove(); empty = null; }
    var row = document.createElement("div");
    if (line.level === "warn" || line.level === "error") row.className = line.level;
    var t = document.createElement("span"); t.className = "t";
    t.textContent = new Date(line.at).toLocaleTimeString() + "  ";
    row.appendChild(t); row.appendChild(document.createTextNode(line.message));
    var atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 8;
    logs.appendChild(row);
    if (atBottom) logs.scrollTop = logs.scrollHeight;
  });
  es.addEventListener("state", function (ev) {
    var run = JSON.parse(ev.data);
    if (stateEl && stateEl.getAttribute("data-state") !== run.state) {
      stateEl.setAttribute("data-state", run.state);
      stateEl.textContent = run.state;
      stateEl.style.background = "var(--s-" + run.state + ")";
      if (run.state_message) { var m = document.getElementById("run-message"); if (m) m.textContent = run.state_message; }
    }
  });
  es.addEventListener("end", function () {
    es.close();
    // The run ended: reload once so task runs, results and buttons reflect the final state.
    if (logs.getAttribute("data-live") === "1") {
      setTimeout(function () { location.reload(); }, 300);
    }
  });
})();
