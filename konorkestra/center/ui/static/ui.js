// Konorkestra dashboard: the little behaviour that cannot be HTML (served from
// /ui/static, so the Content-Security-Policy needs no 'unsafe-inline').
// * A form with data-confirm asks before it submits (the message is the attribute).
// * A <button data-copy="text"> copies text to the clipboard.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  }, true);
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (button && navigator.clipboard) {
      navigator.clipboard.writeText(button.getAttribute("data-copy"));
    }
  });
})();
