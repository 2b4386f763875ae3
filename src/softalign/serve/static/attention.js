// The attention of one hypothesis (or of the forced reference) as token chips and a heatmap
// (rows: target tokens, columns: source tokens). Hovering, tapping or tabbing to a token on
// one side highlights the tokens it attends to on the other side.
const ATTENDED = 0.5; // a token counts as attended at >= half the largest weight on its line
const LABEL_CHARS = 50; // the server's longest heatmap label
const $ = (id) => document.getElementById(id);
const view = { matrix: null, sourceLabels: [], targetLabels: [], pinned: null };

// SentencePiece marks a word start with "▁"; a piece without it continues the word before.
// Words (granularity "word") are shown as they are.
function label(token, words) {
  if (words) return token;
  return token.startsWith("▁") ? token.slice(1) || "▁" : `·${token}`;
}

function chip(token, words, side, index) {
  const element = document.createElement("span");
  element.className = "tok";
  if (words || token.startsWith("▁")) element.classList.add("word-start");
  element.textContent = (words ? token : token.replace(/^▁/, "")) || "▁";
  element.dataset[side] = String(index);
  element.tabIndex = 0;
  return element;
}

// matrix: (targetTokens.length, sourceTokens.length) weights, rows sum to 1.
export function showAttention(sourceTokens, targetTokens, matrix, granularity) {
  const words = granularity === "word";
  view.matrix = matrix;
  view.pinned = null;
  view.sourceLabels = sourceTokens.map((token) => label(token, words));
  view.targetLabels = targetTokens.map((token) => label(token, words));
  $("source-tokens").replaceChildren(...sourceTokens.map((t, j) => chip(t, words, "src", j)));
  $("target-tokens").replaceChildren(...targetTokens.map((t, i) => chip(t, words, "tgt", i)));
  const table = $("heatmap");
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  head.append(document.createElement("th"));
  view.sourceLabels.forEach((text, j) => {
    const th = document.createElement("th");
    th.textContent = text;
    th.dataset.src = String(j);
    head.append(th);
  });
  const body = table.createTBody();
  view.targetLabels.forEach((text, i) => {
    const row = body.insertRow();
    const th = document.createElement("th");
    th.textContent = text;
    th.dataset.tgt = String(i);
    row.append(th);
    matrix[i].forEach((weight, j) => {
      const cell = row.insertCell();
      cell.dataset.i = String(i);
      cell.dataset.j = String(j);
      cell.style.backgroundColor = `rgba(var(--accent), ${weight})`;
      cell.title = `${text} → ${view.sourceLabels[j]}: ${weight.toFixed(3)}`;
    });
  });
}

// What POST /heatmap draws: the labels and weights on screen.
export function heatmapRequest() {
  const cut = (text) => {
    const chars = [...text];
    return chars.length > LABEL_CHARS ? `${chars.slice(0, LABEL_CHARS - 1).join("")}…` : text;
  };
  return {
    source_tokens: view.sourceLabels.map(cut),
    target_tokens: view.targetLabels.map(cut),
    attention: view.matrix,
  };
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
  const matrix = view.matrix;
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
  if (!element || !view.matrix) return null;
  if (element.dataset.tgt !== undefined) return ["tgt", Number(element.dataset.tgt)];
  if (element.dataset.src !== undefined) return ["src", Number(element.dataset.src)];
  return ["tgt", Number(element.dataset.i)];
}

export function listenForFocus(area) {
  const hover = (event) => {
    const target = pointedAt(event);
    if (target && !view.pinned) focus(...target);
  };
  area.addEventListener("mouseover", hover);
  area.addEventListener("focusin", hover);
  area.addEventListener("click", (event) => {
    const target = pointedAt(event);
    if (!target) return;
    const same = view.pinned && view.pinned.join() === target.join();
    view.pinned = same ? null : target;
    if (same) clearFocus();
    else focus(...target);
  });
  area.addEventListener("mouseleave", () => view.pinned || clearFocus());
  document.addEventListener("click", (event) => {
    if (view.pinned && !area.contains(event.target)) {
      view.pinned = null;
      clearFocus();
    }
  });
}
