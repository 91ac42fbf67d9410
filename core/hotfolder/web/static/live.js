/* hotfolder dashboard: live updates. Every element with data-live-src is fetched again when
   the journal changes (server-sent events from /events). The pages work without this file. */
(function () {
  "use strict";
  var parts = document.querySelectorAll("[data-live-src]");
  var badge = document.getElementById("live");
  if (!parts.length || !window.EventSource || !window.fetch) { return; }
  var busy = false, again = false;

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var loads = Array.prototype.map.call(parts, function (el) {
      return fetch(el.getAttribute("data-live-src"), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { el.innerHTML = html; } })
        .catch(function () {});
    });
    Promise.all(loads).then(function () {
      busy = false;
      document.body.setAttribute("data-live-updates", String(
        Number(document.body.getAttribute("data-live-updates") || 0) + 1));
      if (again) { again = false; refresh(); }
    });
  }

  var source = new EventSource("/events");
  source.addEventListener("jobs", refresh);
  source.onopen = function () { if (badge) { badge.hidden = false; badge.textContent = "live"; } };
  source.onerror = function () { if (badge) { badge.textContent = "reconnecting"; } };
})();
