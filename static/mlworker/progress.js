// Live progress of a training run: polls its JSON every 2 s until it ends.
(function () {
  "use strict";
  const box = document.getElementById("run-progress");
  if (!box) return;
  const field = (name) => box.querySelector('[data-field="' + name + '"]');
  async function poll() {
    let data;
    try {
      const response = await fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      data = await response.json();
    } catch (e) { setTimeout(poll, 4000); return; }
    field("status").textContent = data.status;
    field("stage").textContent = data.stage;
    field("epoch").textContent = data.epoch;
    field("n_epochs").textContent = data.n_epochs;
    field("bar").max = data.n_epochs || 1;
    field("bar").value = data.epoch;
    field("loss").textContent = data.loss == null ? "" : data.loss.toFixed(4);
    field("eta").textContent = data.eta_seconds == null ? "" : Math.round(data.eta_seconds);
    field("log").textContent = data.log + (data.error ? "\n" + data.error : "");
    const v = data.model_version;
    field("version").textContent = v ? v.name + (v.is_promoted ? " (promoted)" : "") + " · " + v.primary_metric + " " + (v.primary_value == null ? "" : v.primary_value.toFixed(4)) : "";
    field("predictions").textContent = v ? "· predictions " + v.predictions.chunks_done + "/" + v.predictions.chunks + " chunks" + (v.predictions.chunks_failed ? ", " + v.predictions.chunks_failed + " failed" : "") + (v.predictions.complete ? " (complete)" : "") : "";
    const finished = ["succeeded", "failed", "cancelled"].includes(data.status);
    if (!finished || (v && !v.predictions.complete && data.status === "succeeded")) setTimeout(poll, 2000);
  }
  poll();
})();
