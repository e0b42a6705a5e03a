// Vigía console: reloads the live part of a page ([data-live]) every few
// seconds with the same URL and the X-Vigia-Live header, which makes the
// server send only that fragment. No framework, no third-party code.
(function () {
  "use strict";
  var el = document.querySelector("[data-live]");
  if (!el) return;
  var every = parseInt(el.getAttribute("data-every"), 10) || 3000;
  var busy = false;
  function tick() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(window.location.href, { headers: { "X-Vigia-Live": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          el.innerHTML = html;
          el.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  setInterval(tick, every);
  document.addEventListener("visibilitychange", tick);
})();
