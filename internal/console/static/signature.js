// Vigía console: the customer signs on a canvas with a finger, pen or
// mouse; on submit the drawing goes as a PNG data URL (or the typed name).
(function () {
  "use strict";
  var pad = document.querySelector("[data-signature-pad]");
  var form = document.getElementById("outcome-form");
  if (!pad || !form) return;
  var ctx = pad.getContext("2d");
  var drawn = false, drawing = false, last = null;
  function blank() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    ctx.strokeStyle = "#102a43";
    ctx.lineWidth = 2.5;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    drawn = false;
  }
  function point(e) {
    var r = pad.getBoundingClientRect();
    return { x: (e.clientX - r.left) * pad.width / r.width, y: (e.clientY - r.top) * pad.height / r.height };
  }
  blank();
  pad.addEventListener("pointerdown", function (e) {
    drawing = true; last = point(e);
    if (pad.setPointerCapture) pad.setPointerCapture(e.pointerId);
    e.preventDefault();
  });
  pad.addEventListener("pointermove", function (e) {
    if (!drawing) return;
    var p = point(e);
    ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(p.x, p.y); ctx.stroke();
    last = p; drawn = true;
    e.preventDefault();
  });
  function stop() { drawing = false; }
  pad.addEventListener("pointerup", stop);
  pad.addEventListener("pointercancel", stop);
  pad.addEventListener("pointerleave", stop);
  document.getElementById("sig-clear").addEventListener("click", blank);

  var kindDrawn = document.getElementById("sig-drawn");
  var typed = document.getElementById("signature_typed");
  var wrap = document.getElementById("sig-pad-wrap");
  function sync() {
    wrap.hidden = !kindDrawn.checked;
    typed.hidden = kindDrawn.checked;
  }
  document.getElementById("sig-drawn").addEventListener("change", sync);
  document.getElementById("sig-typed").addEventListener("change", sync);
  sync();

  form.addEventListener("submit", function (e) {
    if (kindDrawn.checked) {
      if (!drawn) { e.preventDefault(); pad.classList.add("missing"); return; }
      document.getElementById("signature_png").value = pad.toDataURL("image/png");
    }
  });
})();
