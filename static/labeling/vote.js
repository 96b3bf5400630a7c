// The voting page: keyboard-driven, one galaxy on screen and the next one already loaded.
// Talks to the REST API (/api/projects/<slug>/...) with the session cookie and CSRF token.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("vote-config").textContent);
  const scheme = cfg.scheme;
  const api = "/api/projects/" + cfg.project;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const $ = (id) => document.getElementById(id);
  const questions = new Map(scheme.questions.map((q) => [q.id, q]));
  const answerById = new Map();
  scheme.questions.forEach((q) => q.answers.forEach((a) => answerById.set(a.id, { answer: a, question: q })));

  const state = {
    current: null, // the galaxy on screen
    queue: [], // galaxies fetched ahead, images preloaded
    shownAt: 0,
    band: 0,
    selection: new Map(), // flat schemes: question id -> Set(answer ids)
    path: [], // trees: answer ids taken so far
    busy: false,
    sessionVotes: 0,
    exhausted: false,
  };

  // ---- talking to the server ------------------------------------------------------------
  async function call(method, url, body) {
    const response = await fetch(url, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: body ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
    });
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (e) { data = null; }
    }
    return { status: response.status, data };
  }

  function imageUrl(subject, band) {
    const cutout = subject.cutouts[band] || subject.cutouts[0];
    if (!cutout) return "";
    const params = new URLSearchParams({ stretch: $("stretch").value, contrast: $("contrast").value, zoom: $("zoom").checked ? "2" : "1" });
    return cutout.png + (cutout.png.includes("?") ? "&" : "?") + params.toString();
  }

  function preload(subject) {
    subject.cutouts.forEach((_, i) => { const img = new Image(); img.src = imageUrl(subject, i); });
  }

  async function fetchNext() {
    const exclude = [state.current, ...state.queue].filter(Boolean).map((s) => s.galaxy);
    const { status, data } = await call("GET", api + "/next/?exclude=" + exclude.join(","));
    if (status === 204) { state.exhausted = true; return null; }
    if (status !== 200) { say("could not fetch the next galaxy: " + ((data && data.detail) || status), true); return null; }
    preload(data);
    return data;
  }

  async function fillQueue() {
    while (state.queue.length < 1 && !state.exhausted) {
      const next = await fetchNext();
      if (!next) break;
      state.queue.push(next);
    }
  }

  // ---- showing a galaxy ---------------------------------------------------------------
  function show(subject) {
    state.current = subject;
    state.band = 0;
    resetAnswers();
    if (!subject) {
      $("source-id").textContent = "Nothing left to classify in this project.";
      $("subject-facts").textContent = "";
      $("galaxy-image").removeAttribute("src");
      $("bands").innerHTML = "";
      $("submit").disabled = true;
      return;
    }
    $("source-id").textContent = subject.source_id;
    $("source-id").dataset.galaxy = subject.galaxy;
    const mag = subject.mag == null ? "" : "mag " + subject.mag.toFixed(2) + " · ";
    $("subject-facts").textContent = mag + subject.survey;
    drawImage();
    const bands = $("bands");
    bands.innerHTML = "";
    if (subject.cutouts.length > 1) {
      subject.cutouts.forEach((c, i) => {
        const img = document.createElement("img");
        img.src = c.png;
        img.title = c.band;
        img.alt = c.band;
        img.addEventListener("click", () => { state.band = i; drawImage(); });
        bands.appendChild(img);
      });
    }
    state.shownAt = performance.now();
  }

  function drawImage() {
    if (!state.current) return;
    $("galaxy-image").src = imageUrl(state.current, state.band);
    document.querySelectorAll("#bands img").forEach((img, i) => img.classList.toggle("selected", i === state.band));
  }

  async function advance() {
    if (!state.queue.length) await fillQueue();
    show(state.queue.shift() || null);
    fillQueue();
  }

  // ---- answers ------------------------------------------------------------------------
  function resetAnswers() {
    state.selection = new Map();
    state.path = [];
    if (scheme.kind === "flat") {
      scheme.questions.forEach((q) => state.selection.set(q.id, new Set(q.default ? [q.default] : [])));
    }
    drawQuestions();
  }

  function currentTreeQuestion() {
    let qid = scheme.root;
    for (const answerId of state.path) qid = answerById.get(answerId).answer.next;
    return qid == null ? null : questions.get(qid);
  }

  function pick(answerId) {
    const { question } = answerById.get(answerId);
    if (scheme.kind === "tree") {
      const q = currentTreeQuestion();
      if (!q || q.id !== question.id) return;
      state.path.push(answerId);
    } else {
      const chosen = state.selection.get(question.id);
      if (question.kind === "multiple") {
        chosen.has(answerId) ? chosen.delete(answerId) : chosen.add(answerId);
      } else {
        chosen.clear();
        chosen.add(answerId);
      }
    }
    drawQuestions();
  }

  function button(answer, on) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.answer = answer.id;
    b.dataset.key = answer.key;
    b.className = on ? "on" : "";
    b.innerHTML = "<kbd></kbd> ";
    b.querySelector("kbd").textContent = answer.shortcut;
    b.appendChild(document.createTextNode(answer.label));
    b.addEventListener("click", () => pick(answer.id));
    return b;
  }

  function drawQuestions() {
    const area = $("question-area");
    area.innerHTML = "";
    if (scheme.kind === "tree") {
      const taken = state.path.map((id) => answerById.get(id).answer.label);
      const path = document.createElement("div");
      path.className = "path";
      path.textContent = taken.length ? "Path: " + taken.join(" → ") + "  (Esc: start over)" : "";
      area.appendChild(path);
      const q = currentTreeQuestion();
      if (q) area.appendChild(questionBlock(q));
      else area.appendChild(Object.assign(document.createElement("p"), { textContent: "Done: press Enter to submit." }));
      $("submit").disabled = !!q || !state.current;
      return;
    }
    scheme.questions.forEach((q) => area.appendChild(questionBlock(q)));
    $("submit").disabled = !state.current;
  }

  function questionBlock(q) {
    const block = document.createElement("div");
    block.className = "question";
    block.dataset.question = q.key;
    const title = document.createElement("h3");
    title.textContent = q.text;
    if (q.required && scheme.kind === "flat") title.insertAdjacentHTML("beforeend", ' <span class="req">*</span>');
    block.appendChild(title);
    const chosen = state.selection.get(q.id) || new Set();
    if (q.kind === "grid") {
      const grid = document.createElement("div");
      grid.className = "grid-q";
      grid.appendChild(document.createElement("span"));
      q.columns.forEach((c) => grid.appendChild(Object.assign(document.createElement("span"), { className: "axis", textContent: c })));
      q.rows.forEach((r, i) => {
        grid.appendChild(Object.assign(document.createElement("span"), { className: "axis", textContent: r }));
        q.answers.filter((a) => a.row === i).sort((a, b) => a.column - b.column)
          .forEach((a) => { const b = button(a, chosen.has(a.id)); b.lastChild.textContent = ""; grid.appendChild(b); });
      });
      block.appendChild(grid);
    } else {
      const answers = document.createElement("div");
      answers.className = "answers";
      q.answers.forEach((a) => answers.appendChild(button(a, chosen.has(a.id))));
      block.appendChild(answers);
    }
    return block;
  }

  function chosenAnswers() {
    if (scheme.kind === "tree") return currentTreeQuestion() ? null : state.path.slice();
    const missing = scheme.questions.filter((q) => q.required && !(state.selection.get(q.id) || new Set()).size);
    if (missing.length) { say("answer: " + missing.map((q) => q.text).join("; "), true); return null; }
    return [].concat(...scheme.questions.map((q) => Array.from(state.selection.get(q.id) || [])));
  }

  // ---- actions ------------------------------------------------------------------------
  function say(text, isError) {
    const status = $("status");
    status.textContent = text;
    status.className = "status" + (isError ? " error" : text ? " ok" : "");
  }

  async function submit() {
    if (state.busy || !state.current) return;
    const answers = chosenAnswers();
    if (!answers) return;
    state.busy = true;
    const seconds = (performance.now() - state.shownAt) / 1000;
    // The vote brings back the galaxy after the one already queued: one request per vote.
    const queued = [state.current, ...state.queue].map((s) => s.galaxy).join(",");
    const { status, data } = await call("POST", api + "/votes/?next=1&exclude=" + queued, {
      galaxy: state.current.galaxy, answers: answers.map(String), seconds_spent: Math.round(seconds * 100) / 100,
    });
    state.busy = false;
    if (status === 201) {
      state.sessionVotes += 1;
      $("session-count").textContent = state.sessionVotes;
      say("vote recorded for " + state.current.source_id, false);
      if (data.next) { preload(data.next); state.queue.push(data.next); } else state.exhausted = true;
      await advance();
    } else {
      say((data && data.detail) || "the vote was not recorded (" + status + ")", true);
      if (status === 409) await advance();
    }
  }

  async function skip() {
    if (state.busy || !state.current) return;
    state.busy = true;
    const { status, data } = await call("POST", api + "/skips/", { galaxy: state.current.galaxy });
    state.busy = false;
    if (status === 201) { say("skipped " + state.current.source_id, false); await advance(); }
    else say((data && data.detail) || "could not skip (" + status + ")", true);
  }

  async function undo() {
    if (state.busy) return;
    state.busy = true;
    const { status, data } = await call("POST", api + "/votes/undo/");
    if (status !== 200) { state.busy = false; say((data && data.detail) || "nothing to undo", true); return; }
    const subject = await call("GET", api + "/subjects/" + data.galaxy + "/");
    state.busy = false;
    if (subject.status === 200) {
      if (state.current) state.queue.unshift(state.current);
      state.sessionVotes = Math.max(0, state.sessionVotes - 1);
      $("session-count").textContent = state.sessionVotes;
      show(subject.data);
      say("vote undone: " + subject.data.source_id + " is back", false);
    }
  }

  // ---- keyboard -----------------------------------------------------------------------
  function shortcutMap() {
    const map = new Map();
    const qs = scheme.kind === "tree" ? [currentTreeQuestion()].filter(Boolean) : scheme.questions;
    qs.forEach((q) => q.answers.forEach((a) => map.set(a.shortcut.toLowerCase(), a.id)));
    return map;
  }

  const stretches = ["asinh", "linear", "log", "sqrt"];
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.tagName === "SELECT" || (event.target.tagName === "INPUT" && event.target.type !== "checkbox" && event.target.type !== "range")) return;
    const key = event.key;
    if (key === "Enter") { event.preventDefault(); submit(); return; }
    if (key === "/") { event.preventDefault(); skip(); return; }
    if (key === "Backspace") { event.preventDefault(); undo(); return; }
    if (key === "Escape" && scheme.kind === "tree") { state.path = []; drawQuestions(); return; }
    if (key === "[" || key === "]") {
      const c = $("contrast");
      c.value = Math.min(5, Math.max(0.3, parseFloat(c.value) + (key === "]" ? 0.3 : -0.3))).toFixed(1);
      drawImage();
      return;
    }
    if (key === "=") { $("zoom").checked = !$("zoom").checked; drawImage(); return; }
    if (key === ";") { const s = $("stretch"); s.value = stretches[(stretches.indexOf(s.value) + 1) % stretches.length]; drawImage(); return; }
    const answerId = shortcutMap().get(key.toLowerCase());
    if (answerId !== undefined) { event.preventDefault(); pick(answerId); }
  });

  ["stretch", "contrast", "zoom"].forEach((id) => $(id).addEventListener("input", drawImage));
  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", skip);
  $("undo").addEventListener("click", undo);

  // ?galaxy=ID (links from the model-human comparison) shows that galaxy first.
  async function start() {
    const wanted = new URLSearchParams(window.location.search).get("galaxy");
    if (wanted && /^\d+$/.test(wanted)) {
      const subject = await call("GET", api + "/subjects/" + wanted + "/");
      if (subject.status === 200) { show(subject.data); fillQueue(); return; }
      say("galaxy " + wanted + " is not in this project; showing the next one", true);
    }
    advance();
  }
  start();
})();
