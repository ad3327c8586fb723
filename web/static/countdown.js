// Keeps every .countdown ticking: remaining wall-clock time to data-due, and the colour of
// its .sla parent (sla-warning from data-warn, sla-breached past data-due). No dependencies.
(function () {
  "use strict";
  function text(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440);
    minutes -= days * 1440;
    var hm = Math.floor(minutes / 60) + ":" + String(minutes % 60).padStart(2, "0");
    return days ? days + " d " + hm : hm;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      var warn = Date.parse(el.dataset.warn);
      if (isNaN(due)) { return; }
      var left = due - now;
      var template = left >= 0 ? el.dataset.left : el.dataset.over;
      el.textContent = template.replace("{t}", text(left));
      var box = el.closest(".sla");
      if (!box || box.classList.contains("sla-paused")) { return; }
      box.classList.toggle("sla-breached", left < 0);
      box.classList.toggle("sla-warning", left >= 0 && !isNaN(warn) && now >= warn);
      box.classList.toggle("sla-ok", left >= 0 && !(now >= warn));
    });
  }
  tick();
  setInterval(tick, 30000);
})();
