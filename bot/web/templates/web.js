// Progressive enhancement only: every page works without this file.
// 1. Live preview: as the alerts are edited, the preview below the form is refreshed
//    (the form's Preview button does the same with a page load).
// 2. On the sign-up form, the time zone starts at the browser's own when it is in the list.
// 3. A feedback link's page sends its form at once: the link's GET records nothing (mail
//    scanners fetch every link), the POST does; without JavaScript the button does it.
(function () {
  "use strict";
  var auto = document.querySelector("form[data-autosubmit]");
  if (auto) HTMLFormElement.prototype.submit.call(auto);
})();
(function () {
  "use strict";
  var form = document.querySelector("form[data-preview]");
  if (!form || !window.fetch || !window.URLSearchParams || !window.FormData) return;
  var target = document.getElementById("preview");
  if (!target) return;
  var timer = null;
  var latest = 0;

  function refresh() {
    var body = new URLSearchParams(new FormData(form));
    body.set("action", "preview");
    var mine = ++latest;
    target.setAttribute("aria-busy", "true");
    fetch(form.getAttribute("data-preview"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        // answers can arrive out of order: only the latest request's answer is shown
        if (html !== null && mine === latest) target.innerHTML = html;
      })
      .catch(function () { /* the Preview button still works */ })
      .then(function () { if (mine === latest) target.removeAttribute("aria-busy"); });
  }

  function later(event) {
    var name = event.target && event.target.name;
    if (name === "email" || name === "website") return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 350);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);

  var zone = form.querySelector("select[name=timezone]");
  var fallback = form.getAttribute("data-guess-timezone");
  if (zone && fallback && zone.value === fallback) {
    try {
      var mine = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (mine) {
        for (var i = 0; i < zone.options.length; i++) {
          if (zone.options[i].value === mine) { zone.selectedIndex = i; break; }
        }
      }
    } catch (e) { /* keep the server's default */ }
  }
})();
