// The rating page of a blinded sample: renders window.RATING_SAMPLE, keeps the answers in
// localStorage, and saves them as a JSON file through a Blob download (no server).
(function () {
  "use strict";
  const sample = window.RATING_SAMPLE;
  const storeKey = "tau-emotion-ratings/" + sample.sample;
  const state = load();

  function load() {
    try {
      const saved = JSON.parse(localStorage.getItem(storeKey) || "null");
      if (saved && saved.items) return saved;
    } catch (error) { /* a damaged entry starts afresh */ }
    return { rater: "", items: {} };
  }

  function keep() {
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (error) { /* private mode */ }
    progress();
  }

  function itemState(id) {
    if (!state.items[id]) state.items[id] = { turns: {}, fidelity: { faithful: null, flags: [] } };
    return state.items[id];
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function complete(item) {
    const rated = state.items[item.id];
    if (!rated || rated.fidelity.faithful === null) return false;
    return item.turns.every((t) => rated.turns[t] && rated.turns[t].emotion && rated.turns[t].intensity !== null
      && rated.turns[t].intensity !== undefined);
  }

  function progress() {
    const done = sample.items.filter(complete).length;
    document.getElementById("progress").textContent = done + " of " + sample.items.length + " conversations rated";
    for (const item of sample.items) {
      const card = document.getElementById("item-" + item.id);
      if (card) card.classList.toggle("done", complete(item));
    }
  }

  function turnControls(item, turn) {
    const rated = itemState(item.id).turns[turn] || {};
    const box = el("div", { class: "rate" });
    const emotion = el("select", { class: "emotion", "data-item": item.id, "data-turn": String(turn) });
    emotion.appendChild(el("option", { value: "" }, "emotion…"));
    for (const label of sample.emotions) emotion.appendChild(el("option", { value: label }, label));
    emotion.value = rated.emotion || "";
    const intensity = el("select", { class: "intensity", "data-item": item.id, "data-turn": String(turn) });
    intensity.appendChild(el("option", { value: "" }, "intensity…"));
    for (const level of sample.intensities) intensity.appendChild(el("option", { value: String(level) }, String(level)));
    intensity.value = rated.intensity === undefined || rated.intensity === null ? "" : String(rated.intensity);
    const change = () => {
      itemState(item.id).turns[turn] = {
        emotion: emotion.value || null,
        intensity: intensity.value === "" ? null : Number(intensity.value),
      };
      keep();
    };
    emotion.addEventListener("change", change);
    intensity.addEventListener("change", change);
    box.append(el("span", { class: "muted" }, "turn " + turn), emotion, intensity);
    return box;
  }

  function fidelityControls(item) {
    const fidelity = itemState(item.id).fidelity;
    const box = el("div", { class: "fidelity" });
    box.appendChild(el("span", {}, "Did the customer play its part? "));
    for (const [value, text] of [["yes", "yes"], ["no", "no"]]) {
      const label = el("label");
      const input = el("input", { type: "radio", name: "faithful-" + item.id, value: value, class: "faithful",
        "data-item": item.id });
      input.checked = fidelity.faithful === (value === "yes");
      input.addEventListener("change", () => { itemState(item.id).fidelity.faithful = value === "yes"; keep(); });
      label.append(input, " " + text + " ");
      box.appendChild(label);
    }
    box.appendChild(el("span", { class: "muted" }, " if not: "));
    for (const kind of sample.flag_kinds) {
      const label = el("label");
      const input = el("input", { type: "checkbox", class: "flag", "data-item": item.id, "data-kind": kind });
      input.checked = fidelity.flags.includes(kind);
      input.addEventListener("change", () => {
        const flags = new Set(itemState(item.id).fidelity.flags);
        if (input.checked) flags.add(kind); else flags.delete(kind);
        itemState(item.id).fidelity.flags = sample.flag_kinds.filter((k) => flags.has(k));
        keep();
      });
      label.append(input, " " + kind + " ");
      box.appendChild(label);
    }
    return box;
  }

  function render() {
    const main = document.getElementById("items");
    main.replaceChildren();
    sample.items.forEach((item, index) => {
      const card = el("article", { class: "item", id: "item-" + item.id, "data-item": item.id });
      card.appendChild(el("h3", {}, "Conversation " + (index + 1) + " · " + item.id));
      card.appendChild(el("div", { class: "instruction" }, item.instruction));
      for (const message of item.messages) {
        const row = el("div", { class: "msg " + message.role });
        if (message.role === "customer") {
          row.appendChild(el("strong", {}, "customer turn " + message.turn + ": "));
          row.appendChild(document.createTextNode(message.text + (message.ends ? " [ends the conversation]" : "")));
          if (message.rate) row.appendChild(turnControls(item, message.turn));
        } else if (message.role === "agent") {
          row.appendChild(el("strong", {}, "agent: "));
          row.appendChild(document.createTextNode(message.text));
          for (const call of message.calls) row.appendChild(el("div", { class: "muted" }, "calls " + call));
        } else {
          row.textContent = "result: " + message.text;
        }
        card.appendChild(row);
      }
      card.appendChild(fidelityControls(item));
      main.appendChild(card);
    });
  }

  function save() {
    const rater = document.getElementById("rater").value.trim();
    if (!rater) { alert("Enter your name or initials first."); return; }
    state.rater = rater;
    keep();
    const ratings = sample.items.filter((item) => state.items[item.id]).map((item) => ({
      item: item.id,
      turns: item.turns.filter((t) => state.items[item.id].turns[t]).map((t) => ({
        turn: t, emotion: state.items[item.id].turns[t].emotion, intensity: state.items[item.id].turns[t].intensity,
      })),
      fidelity: state.items[item.id].fidelity,
    }));
    const file = { format: "tau-emotion-ratings", version: 1, sample: sample.sample, rater: rater,
      saved_at: new Date().toISOString(), ratings: ratings };
    const blob = new Blob([JSON.stringify(file, null, 1)], { type: "application/json" });
    const link = document.getElementById("download");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.download = "ratings-" + sample.sample + "-" + rater.replace(/[^A-Za-z0-9_-]+/g, "_") + ".json";
    link.click();
  }

  document.getElementById("rater").value = state.rater || "";
  document.getElementById("rater").addEventListener("change", (event) => { state.rater = event.target.value; keep(); });
  document.getElementById("save").addEventListener("click", save);
  render();
  progress();
})();
