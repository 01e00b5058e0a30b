// Strata console: the live parts only. Every page works without this file.
(function () {
  "use strict";

  // Parts marked data-refresh (the apps list, an app's instances) reload
  // themselves from the same page every data-refresh milliseconds.
  if (window.fetch && window.DOMParser) {
    document.querySelectorAll("[data-refresh][id]").forEach(function (el) {
      var every = parseInt(el.dataset.refresh, 10) || 2000;
      setInterval(function () {
        if (document.hidden) return;
        fetch(location.pathname, { credentials: "same-origin", headers: { "Accept": "text/html" } })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (!html) return;
            var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(el.id);
            var cur = document.getElementById(el.id);
            if (fresh && cur && cur.innerHTML !== fresh.innerHTML) cur.innerHTML = fresh.innerHTML;
          })
          .catch(function () {});
      }, every);
    });
  }

  // The logs page follows new lines over Server-Sent Events.
  var log = document.getElementById("log");
  if (log && log.dataset.stream && window.EventSource) {
    var paused = false, held = [];
    var pause = document.getElementById("pause");
    var live = document.getElementById("live");
    pause.hidden = false;
    pause.addEventListener("click", function () {
      paused = !paused;
      pause.textContent = paused ? "Resume" : "Pause";
      if (!paused) { held.forEach(append); held = []; }
    });
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var append = function (e) {
      var t = new Date(e.time);
      var span = document.createElement("span");
      span.className = "line";
      span.textContent = pad(t.getHours()) + ":" + pad(t.getMinutes()) + ":" + pad(t.getSeconds()) +
        " [" + e.source + "] " + e.line + "\n";
      var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.appendChild(span);
      if (atEnd) log.scrollTop = log.scrollHeight;
    };
    // The controller says how many lines it dropped when the stream fell
    // behind; the counter adds them up.
    var drops = document.getElementById("drops"), dropped = 0;
    var countDrops = function (e) {
      if (!e.dropped || !drops) return;
      dropped += e.dropped;
      drops.textContent = dropped + " lines dropped: the stream fell behind";
      drops.hidden = false;
    };
    var es = new EventSource(log.dataset.stream);
    var first = true;
    es.onopen = function () { live.hidden = false; first = true; };
    es.onerror = function () { live.hidden = true; };
    es.onmessage = function (m) {
      // Each connection starts with the recent lines: they replace the shown ones.
      if (first) { log.textContent = ""; first = false; }
      var e = JSON.parse(m.data);
      countDrops(e);
      if (paused) held.push(e); else append(e);
    };
    es.addEventListener("failure", function (m) {
      live.hidden = true;
      es.close();
      var e = JSON.parse(m.data);
      append({ time: new Date().toISOString(), source: "console", line: e.error });
    });
  }
})();
