// The hosted survey page's only script; the page works without it.
// A GET of the page records nothing (mail scanners fetch links), so the invitation is marked
// "opened" only when a person starts to answer: the first pointer press or focus in the form.
// It also moves focus to the error summary after a refused submit.
(function () {
  "use strict";
  var errors = document.getElementById("errors");
  if (errors) errors.focus();
  var form = document.querySelector("form[data-opened]");
  if (!form) return;
  var sent = false;
  function opened() {
    if (sent) return;
    sent = true;
    var url = form.getAttribute("data-opened");
    if (!(navigator.sendBeacon && navigator.sendBeacon(url))) {
      fetch(url, { method: "POST", keepalive: true, credentials: "omit" }).catch(function () {});
    }
  }
  form.addEventListener("pointerdown", opened);
  form.addEventListener("focusin", opened);
})();
