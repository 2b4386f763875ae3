// softalign attention explorer: translate one sentence, show the n-best list and the
// attention of the chosen hypothesis as token chips and a heatmap (rows: target tokens,
// columns: source tokens). Hovering, tapping or tabbing to a token on one side highlights
// the tokens it attends to on the other side. No libraries, no network beyond this server.
"use strict";

const ATTENDED = 0.5; // a token counts as attended at >= half the largest weight on its line
const $ = (id) => document.getElementById(id);
const state = { sourceTokens: [], candidates: [], attention: null, pinned: null };

function setStatus(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

function fillSelect(select, max, value) {
  select.replaceChildren();
  for (let k = 1; k <= max; k++) select.add(new Option(String(k), String(k)));
  select.value = String(Math.max(1, Math.min(value, max)));
}

function fillNbest(preferred) {
  fillSelect($("nbest"), Number($("beam").value), preferred ?? Number($("nbest").value));
}

async function loadInfo() {
  try {
    const response = await fetch("/info");
    const info = await response.json();
    $("model-info").textContent =
      `${info.model} · ${info.source_language} → ${info.target_language} · ` +
      `${info.rnn_type.toUpperCase()}, ${info.attention} attention`;
    fillSelect($("beam"), info.limits.max_beam, info.default_beam);
    fillNbest(3);
    $("source").maxLength = info.limits.max_chars;
  } catch (error) {
    $("model-info").textContent = `cannot reach the server (${error.message})`;
  }
}

async function translate(event) {
  event.preventDefault();
  const text = $("source").value.replace(/\s+/g, " ").trim();
  if (!text) {
    setStatus("Type a sentence first.", true);
    return;
  }
  const request = {
    text: [text],
    beam: Number($("beam").value),
    nbest: Number($("nbest").value),
    attention: true,
  };
  $("translate").disabled = true;
  setStatus("translating…");
  const started = performance.now();
  try {
    const response = await fetch("/translate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    const [sentence] = body.translations;
    state.sourceTokens = sentence.source_tokens || [];
    state.candidates = sentence.nbest;
    renderNbest();
    choose(0);
    $("result").hidden = false;
    const ms = Math.round(performance.now() - started);
    setStatus(`beam ${body.beam}: ${sentence.nbest.length} hypotheses in ${ms} ms`);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    $("translate").disabled = false;
  }
}

function renderNbest() {
  const list = $("nbest-list");
  list.replaceChildren();
  state.candidates.forEach((candidate, k) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.candidate = String(k);
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = candidate.text || "(empty)";
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = candidate.score.toFixed(3);
    button.append(text, score);
    button.addEventListener("click", () => choose(k));
    const item = document.createElement("li");
    item.append(button);
    list.append(item);
  });
}

function choose(k) {
  document.querySelectorAll("#nbest-list button").forEach((button) => {
    button.setAttribute("aria-pressed", String(Number(button.dataset.candidate) === k));
  });
  const candidate = state.candidates[k];
  state.pinned = null;
  state.attention = candidate ? candidate.attention || null : null;
  $("attention").hidden = !state.attention;
  $("attention-hint").textContent = state.attention
    ? "Hover or tap a word: the words it attends to light up on the other side. " +
      "Tap again to let go."
    : "This model has no attention to show.";
  if (state.attention) renderAttention(state.sourceTokens, candidate.target_tokens);
}

// SentencePiece marks a word start with "▁"; a piece without it continues the word before.
function label(piece) {
  return piece.startsWith("▁") ? piece.slice(1) || "▁" : `·${piece}`;
}

function chip(piece, side, index) {
  const element = document.createElement("span");
  element.className = "tok";
  if (piece.startsWith("▁")) element.classList.add("word-start");
  element.textContent = piece.replace(/^▁/, "") || "▁";
  element.dataset[side] = String(index);
  element.tabIndex = 0;
  return element;
}

function renderAttention(sourceTokens, targetTokens) {
  $("source-tokens").replaceChildren(...sourceTokens.map((p, j) => chip(p, "src", j)));
  $("target-tokens").replaceChildren(...targetTokens.map((p, i) => chip(p, "tgt", i)));
  const table = $("heatmap");
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  head.append(document.createElement("th"));
  sourceTokens.forEach((piece, j) => {
    const th = document.createElement("th");
    th.textContent = label(piece);
    th.dataset.src = String(j);
    head.append(th);
  });
  const body = table.createTBody();
  targetTokens.forEach((piece, i) => {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.textContent = label(piece);
    th.dataset.tgt = String(i);
    row.append(th);
    state.attention[i].forEach((weight, j) => {
      const cell = row.insertCell();
      cell.dataset.i = String(i);
      cell.dataset.j = String(j);
      cell.style.backgroundColor = `rgba(var(--accent), ${weight})`;
      cell.title = `${label(piece)} → ${label(sourceTokens[j])}: ${weight.toFixed(3)}`;
    });
  });
}

function clearFocus() {
  document.querySelectorAll("#attention .active, #attention .attended, #attention .line")
    .forEach((element) => element.classList.remove("active", "attended", "line"));
  document.querySelectorAll("#attention .tok").forEach((element) => {
    element.style.backgroundColor = "";
    element.classList.remove("strong");
  });
}

// side "tgt": a target token i, its row of weights over the source tokens; side "src": a
// source token j, its column of weights over the target tokens.
function focus(side, index) {
  clearFocus();
  const matrix = state.attention;
  const weights = side === "tgt" ? matrix[index] : matrix.map((row) => row[index]);
  const largest = Math.max(...weights);
  const other = side === "tgt" ? "src" : "tgt";
  document.querySelectorAll(`#attention [data-${side}="${index}"]`)
    .forEach((element) => element.classList.add("active"));
  weights.forEach((weight, k) => {
    const attended = largest > 0 && weight >= ATTENDED * largest;
    const [i, j] = side === "tgt" ? [index, k] : [k, index];
    const cell = document.querySelector(`#heatmap td[data-i="${i}"][data-j="${j}"]`);
    cell.classList.add("line");
    cell.classList.toggle("attended", attended);
    const token = document.querySelector(`#attention .tok[data-${other}="${k}"]`);
    token.style.backgroundColor = `rgba(var(--accent), ${weight})`;
    token.classList.toggle("strong", weight > 0.55);
    token.classList.toggle("attended", attended);
  });
}

function pointedAt(event) {
  const element = event.target.closest("[data-tgt], [data-src], td[data-i]");
  if (!element) return null;
  if (element.dataset.tgt !== undefined) return ["tgt", Number(element.dataset.tgt)];
  if (element.dataset.src !== undefined) return ["src", Number(element.dataset.src)];
  return ["tgt", Number(element.dataset.i)];
}

function hover(event) {
  const target = pointedAt(event);
  if (target && !state.pinned) focus(...target);
}

function tap(event) {
  const target = pointedAt(event);
  if (!target) return;
  const same = state.pinned && state.pinned.join() === target.join();
  state.pinned = same ? null : target;
  if (same) clearFocus();
  else focus(...target);
}

const area = $("attention");
area.addEventListener("mouseover", hover);
area.addEventListener("focusin", hover);
area.addEventListener("click", tap);
area.addEventListener("mouseleave", () => state.pinned || clearFocus());
document.addEventListener("click", (event) => {
  if (state.pinned && !area.contains(event.target)) {
    state.pinned = null;
    clearFocus();
  }
});
$("beam").addEventListener("change", () => fillNbest());
$("form").addEventListener("submit", translate);
$("source").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("form").requestSubmit();
  }
});
loadInfo();
