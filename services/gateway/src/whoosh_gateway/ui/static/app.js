/* WHOOSH dashboard: live updates over server-sent events, bounded live output, small
   helpers. No build step, no dependencies beyond the vendored uPlot.

   The stream carries the store's event ids: the browser resumes after the last one
   itself (Last-Event-ID) when the connection drops, and a tab that was hidden (its
   stream closed to spare the server) reopens with ?last_event_id= the same way. */
(function () {
  "use strict";

  var REFRESH_MS = 700;     // at most one re-render of a section per this interval
  var RETRY_MAX_MS = 10000; // a failed re-render is tried again, backing off to this
  var FEED_CAP = 200;       // activity feed rows kept
  var liveRoot = document.querySelector("[data-live-scope]");
  var source = null;
  var lastId = null;
  var pending = {};         // section id -> an event asked for it to be re-rendered
  var roundTimer = null;    // the next re-render round, when one is scheduled
  var roundBusy = false;    // a round's fetch is under way
  var roundFailures = 0;    // rounds failed in a row (the retry backs off)
  var output = document.getElementById("output");
  var outputCap = output ? parseInt(output.dataset.cap || "2000", 10) : 0;
  var outputLines = output && output.textContent ? output.textContent.split("\n").length : 0;
  var outputBuffer = "";
  var hiddenLines = 0;

  function streamUrl() {
    var params = new URLSearchParams();
    if (liveRoot.dataset.liveScope === "task") params.set("task", liveRoot.dataset.task);
    var after = lastId !== null ? lastId : liveRoot.dataset.lastEventId;
    if (after !== undefined && after !== "") params.set("last_event_id", after);
    return "/ui/stream?" + params.toString();
  }

  function setDot(state) {
    var dot = document.getElementById("live-dot");
    if (dot) { dot.dataset.state = state; dot.title = "live updates: " + state; }
  }

  function open() {
    if (!liveRoot || source) return;
    source = new EventSource(streamUrl());
    source.addEventListener("ready", function () { setDot("on"); });
    source.addEventListener("evt", onEvent);
    source.addEventListener("line", onLine);
    source.addEventListener("logout", function () {
      close();
      window.location = "/ui/login?why=" + encodeURIComponent("your session has ended; sign in again");
    });
    source.onerror = function () { setDot("reconnecting"); };
  }

  function close() {
    if (source) { source.close(); source = null; }
    setDot("off");
  }

  function onEvent(e) {
    if (e.lastEventId) lastId = e.lastEventId;
    var msg;
    try { msg = JSON.parse(e.data); } catch (err) { return; }
    scheduleRefreshes(msg.type || "");
    addToFeed(msg);
    addToHistory(msg);
    if (output && (msg.type === "execution_completed" || msg.type === "execution_error")) {
      /* The stored output is the whole truth (live lines are best effort, and those
         printed before this page opened never reached it): show it in their place. */
      if (msg.output) {
        output.textContent = ""; outputLines = 0; hiddenLines = 0; outputBuffer = "";
        appendOutput(msg.output);
      }
    }
  }

  function scheduleRefreshes(type) {
    document.querySelectorAll("[data-refresh-on]").forEach(function (el) {
      var wanted = el.dataset.refreshOn.split(/\s+/);
      var hit = wanted.some(function (prefix) { return prefix && type.indexOf(prefix) === 0; });
      if (hit && el.id) requestRefresh(el.id);
    });
  }

  /* The sections an event touched are re-rendered together, from one fetch of the page,
     at most once per REFRESH_MS. An event that arrives while a round is under way asks for
     one more round afterwards, so the page always ends on a rendering made after the last
     event it heard of; a failed round is tried again, backing off. (htmx's ajax, used
     before, queued every section's refresh on one element and kept only the last waiting
     request, so one section's refresh could drop another's.) */
  function requestRefresh(id) {
    pending[id] = true;
    scheduleRound(REFRESH_MS);
  }

  function scheduleRound(wait) {
    if (roundBusy || roundTimer !== null) return;
    roundTimer = setTimeout(refreshRound, wait);
  }

  function refreshRound() {
    roundTimer = null;
    var ids = Object.keys(pending);
    if (!ids.length) return;
    pending = {};
    roundBusy = true;
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) {
        if (answer.redirected && new URL(answer.url).pathname === "/ui/login") {
          window.location = answer.url;  // the session ended
          return null;
        }
        if (!answer.ok) throw new Error("HTTP " + answer.status);
        return answer.text();
      })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var missing = ids.filter(function (id) {
          var section = fresh.getElementById(id);
          var current = document.getElementById(id);
          if (section && current) current.replaceWith(section);
          return !section;
        });
        if (missing.length) throw new Error("the page has no #" + missing.join(", #"));
        roundFailures = 0;
        roundBusy = false;
        scheduleRound(REFRESH_MS);  // events that came meanwhile
      })
      .catch(function () {
        ids.forEach(function (id) { pending[id] = true; });
        roundBusy = false;
        roundFailures += 1;
        scheduleRound(Math.min(RETRY_MAX_MS, REFRESH_MS * Math.pow(2, roundFailures)));
      });
  }

  function addToFeed(msg) {
    var feed = document.getElementById("feed");
    if (!feed) return;
    var li = document.createElement("li");
    var when = (msg.timestamp || "").slice(11, 19);
    var what = msg.stored_type || msg.type;
    var time = document.createElement("time"); time.textContent = when;
    li.appendChild(time);
    li.appendChild(document.createTextNode(" " + what + " "));
    if (msg.task_id) {
      var a = document.createElement("a");
      a.href = "/ui/tasks/" + msg.task_id; a.textContent = msg.task_id.slice(0, 8);
      li.appendChild(a);
    } else {
      li.appendChild(document.createTextNode((msg.agent || msg.aggregate || "") + " "));
    }
    if (msg.summary) li.appendChild(document.createTextNode(" " + msg.summary));
    feed.insertBefore(li, feed.firstChild);
    while (feed.children.length > FEED_CAP) feed.removeChild(feed.lastChild);
  }

  function addToHistory(msg) {
    var table = document.getElementById("history");
    if (!table || !msg.event_id) return;
    if (table.querySelector('[data-event-id="' + msg.event_id + '"]')) return;
    var tr = document.createElement("tr");
    tr.dataset.eventId = msg.event_id;
    var cells = [msg.event_id, (msg.timestamp || "").slice(11, 23),
                 msg.stored_type || msg.type, msg.actor || "", msg.summary || ""];
    cells.forEach(function (value) {
      var td = document.createElement("td"); td.textContent = value; tr.appendChild(td);
    });
    table.tBodies[0].appendChild(tr);
  }

  function onLine(e) {
    if (!output) return;
    var msg;
    try { msg = JSON.parse(e.data); } catch (err) { return; }
    appendOutput(msg.stream === "token" ? msg.text : msg.text + "\n");
  }

  /* Output arrives as many small pieces: they are joined and written once per frame,
     and only the last `outputCap` lines stay in the page (all of it is downloadable). */
  function appendOutput(text) {
    outputBuffer += text;
    if (outputBuffer.length === text.length) window.requestAnimationFrame(flushOutput);
  }

  function flushOutput() {
    if (!outputBuffer) return;
    var text = outputBuffer;
    outputBuffer = "";
    var lines = (text.match(/\n/g) || []).length;
    if (lines > outputCap) {  // one burst longer than the cap: keep only its tail
      var cut = text.length;
      for (var i = 0; i < outputCap; i++) cut = text.lastIndexOf("\n", cut - 1);
      hiddenLines += outputLines + lines - outputCap;
      output.textContent = "";
      outputLines = 0;
      text = text.slice(cut + 1);
      lines = outputCap;
    }
    var chunk = document.createElement("span");
    chunk.textContent = text;
    chunk.dataset.lines = lines;
    outputLines += lines;
    output.appendChild(chunk);
    while (outputLines > outputCap && output.firstChild && output.firstChild !== chunk) {
      var first = output.firstChild;
      var n = first.dataset ? parseInt(first.dataset.lines || "0", 10)
                            : (first.textContent.match(/\n/g) || []).length;
      outputLines -= n; hiddenLines += n;
      output.removeChild(first);
    }
    if (hiddenLines) {
      var note = document.getElementById("output-note");
      if (note) note.textContent = hiddenLines + " earlier lines not shown (download all for them)";
    }
    var follow = document.getElementById("follow");
    if (!follow || follow.checked) output.scrollTop = output.scrollHeight;
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) close(); else open();
  });

  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-copy]");
    if (button && navigator.clipboard) navigator.clipboard.writeText(button.dataset.copy);
  });

  function drawChart() {
    var holder = document.getElementById("agent-chart");
    var data = document.getElementById("agent-chart-data");
    if (!holder || !data || !window.uPlot) return;
    var d = JSON.parse(data.textContent);
    if (!d.t.length) { holder.textContent = "No finished tasks yet."; return; }
    new uPlot({
      width: Math.min(holder.clientWidth || 800, 900), height: 220,
      series: [{}, { label: "decode tok/s", stroke: "#2a7", scale: "tps" },
                   { label: "seconds per task", stroke: "#c53", scale: "s" }],
      axes: [{}, { scale: "tps", label: "tok/s" }, { scale: "s", side: 1, label: "s" }],
    }, [d.t, d.tps, d.latency], holder);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!document.hidden) open();
    drawChart();
  });
})();
