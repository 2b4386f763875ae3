// softalign attention explorer: translate sentences (one per line, each on its own), show
// each sentence's n-best list and, with an optional reference, the model force-decoding it;
// the attention of the chosen hypothesis is drawn by attention.js, at subword or word level,
// and POST /heatmap turns it into a PNG or SVG download. No libraries, no network beyond
// this server.
import { heatmapRequest, listenForFocus, showAttention } from "./attention.js";

const $ = (id) => document.getElementById(id);
const limits = { max_chars: null, max_sentences: null };
const state = { sentences: [], sentence: 0, choice: 0, granularity: "subword", request: null };

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
    Object.assign(limits, info.limits);
    if (info.attention === "none") {
      $("reference").disabled = true;
      $("reference").placeholder = "this model has no attention: nothing to force-decode";
    }
    countAll();
  } catch (error) {
    $("model-info").textContent = `cannot reach the server (${error.message})`;
  }
}

// ---------------------------------------------------------------- lines and their limits

// One sentence per line, trimmed; trailing empty lines dropped.
function lines(text) {
  const all = text.split(/\r?\n/).map((line) => line.trim());
  while (all.length && !all[all.length - 1]) all.pop();
  return all;
}

const characters = (text) => [...text].length; // code points, as the server counts them

// Under a text box: its longest line against max_chars and its lines against max_sentences.
// Nothing is cut: over a limit the count turns red and the server's refusal says why.
function count(box, counter) {
  if (!limits.max_chars) return;
  const all = lines(box.value);
  const sentences = all.filter(Boolean).length;
  let longest = 0;
  let where = 0;
  all.forEach((line, k) => {
    if (characters(line) > longest) [longest, where] = [characters(line), k + 1];
  });
  const longLine = longest > limits.max_chars;
  const many = sentences > limits.max_sentences;
  counter.textContent =
    `${longLine ? `line ${where}: ` : "longest line "}${longest} / ${limits.max_chars} ` +
    `characters · ${sentences} / ${limits.max_sentences} lines` +
    (longLine || many ? " · over the server's limit" : "");
  counter.classList.toggle("over", longLine || many);
  box.setAttribute("aria-invalid", String(longLine || many));
}

function countAll() {
  count($("source"), $("source-count"));
  count($("reference"), $("reference-count"));
}

// The sentences to send: non-empty source lines, each with its reference line (if any).
function readSentences() {
  const sources = lines($("source").value);
  const references = $("reference").disabled ? [] : lines($("reference").value);
  if (!sources.some(Boolean)) throw new Error("Type a sentence first (one per line).");
  if (references.length && references.length !== sources.length) {
    throw new Error(
      `The reference has ${references.length} lines for ${sources.length} source lines: ` +
        "one per source line (an empty line for none).",
    );
  }
  const sentences = [];
  sources.forEach((source, k) => {
    const reference = references[k] || null;
    if (source) sentences.push({ source, reference });
    else if (reference) throw new Error(`Reference line ${k + 1} has no source sentence.`);
  });
  return sentences;
}

// ---------------------------------------------------------------- requests

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (response.ok) return response;
  let message = response.statusText;
  try {
    message = (await response.json()).error.message;
  } catch {} // not JSON: the status text will do
  throw new Error(message);
}

async function run(request, keepChoice = false) {
  $("translate").disabled = true;
  setStatus("translating…");
  const started = performance.now();
  const { sentences, beam, nbest } = request;
  const granularity = state.granularity;
  const forced = sentences.filter((s) => s.reference);
  try {
    const [translated, force] = await Promise.all([
      post("/translate", {
        text: sentences.map((s) => s.source),
        beam,
        nbest,
        attention: true,
        granularity,
      }).then((r) => r.json()),
      forced.length
        ? post("/force", {
            text: forced.map((s) => s.source),
            reference: forced.map((s) => s.reference),
            granularity,
          }).then((r) => r.json())
        : null,
    ]);
    const alignments = force ? [...force.alignments] : [];
    state.sentences = translated.translations.map((t, k) => ({
      ...t,
      reference: sentences[k].reference ? alignments.shift() : null,
    }));
    state.request = request;
    if (!keepChoice) [state.sentence, state.choice] = [0, 0];
    renderSentences();
    chooseSentence(Math.min(state.sentence, state.sentences.length - 1), state.choice);
    $("result").hidden = false;
    const ms = Math.round(performance.now() - started);
    const hypotheses = `${nbest} ${nbest === 1 ? "hypothesis" : "hypotheses"}`;
    const what =
      sentences.length === 1 ? hypotheses : `${sentences.length} sentences, ${hypotheses} each,`;
    setStatus(`beam ${translated.beam}: ${what} in ${ms} ms`);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    $("translate").disabled = false;
  }
}

function translate(event) {
  event.preventDefault();
  try {
    const sentences = readSentences();
    run({ sentences, beam: Number($("beam").value), nbest: Number($("nbest").value) });
  } catch (error) {
    setStatus(error.message, true);
  }
}

// ---------------------------------------------------------------- lists

function entry(text, score, pressedKey, onChoose) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.key = pressedKey;
  const textSpan = document.createElement("span");
  textSpan.className = "text";
  textSpan.textContent = text || "(empty)";
  const scoreSpan = document.createElement("span");
  scoreSpan.className = "score";
  scoreSpan.textContent = score;
  button.append(textSpan, scoreSpan);
  button.addEventListener("click", onChoose);
  const item = document.createElement("li");
  item.append(button);
  return item;
}

function press(list, key) {
  list.querySelectorAll("button").forEach((button) => {
    button.setAttribute("aria-pressed", String(button.dataset.key === String(key)));
  });
}

function renderSentences() {
  const many = state.sentences.length > 1;
  $("sentences-box").hidden = !many;
  $("sentence-list").replaceChildren(
    ...state.sentences.map((s, k) =>
      entry(`${s.source} → ${s.text || "(empty)"}`, "", String(k), () => chooseSentence(k)),
    ),
  );
}

function chooseSentence(k, choice = 0) {
  state.sentence = k;
  press($("sentence-list"), k);
  const sentence = state.sentences[k];
  $("nbest-list").replaceChildren(
    ...sentence.nbest.map((c, i) => entry(c.text, c.score.toFixed(3), String(i), () => choose(i))),
  );
  const reference = sentence.reference;
  $("reference-box").hidden = !reference;
  $("reference-list").replaceChildren(
    ...(reference
      ? [entry(reference.reference, `log p ${reference.log_prob.toFixed(3)}`, "reference", () =>
          choose("reference"),
        )]
      : []),
  );
  choose(choice === "reference" && !reference ? 0 : choice);
}

// choice: a hypothesis index, or "reference" for the forced reference.
function choose(choice) {
  state.choice = choice;
  press($("nbest-list"), choice);
  press($("reference-list"), choice);
  const sentence = state.sentences[state.sentence];
  const forced = choice === "reference";
  const shown = forced ? sentence.reference : sentence.nbest[choice];
  const attention = shown && shown.attention && shown.target_tokens.length ? shown.attention : null;
  $("attention").hidden = !attention;
  $("downloads").hidden = !attention;
  $("attention-hint").textContent = !attention
    ? shown && shown.attention
      ? "An empty translation: no attention to show."
      : "This model has no attention to show."
    : forced
      ? "The model reading the reference: row t is where it looked while predicting " +
        "reference token t. Hover or tap a word to follow it."
      : "Hover or tap a word: the words it attends to light up on the other side. " +
        "Tap again to let go.";
  if (attention) {
    const source = forced ? shown.source_tokens : sentence.source_tokens;
    showAttention(source, shown.target_tokens, attention, state.granularity);
  }
}

// ---------------------------------------------------------------- downloads

async function download(format) {
  try {
    const response = await post("/heatmap", { ...heatmapRequest(), format });
    const url = URL.createObjectURL(await response.blob());
    const which = state.choice === "reference" ? "reference" : `hypothesis${state.choice + 1}`;
    const link = document.createElement("a");
    link.href = url;
    link.download = `attention-sentence${state.sentence + 1}-${which}.${format}`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    setStatus(`cannot draw the heatmap: ${error.message}`, true);
  }
}

// ---------------------------------------------------------------- wiring

state.granularity = document.querySelector('input[name="granularity"]:checked').value;
listenForFocus($("attention"));
$("beam").addEventListener("change", () => fillNbest());
$("form").addEventListener("submit", translate);
for (const box of [$("source"), $("reference")]) {
  box.addEventListener("input", countAll);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("form").requestSubmit();
    }
  });
}
document.querySelectorAll('input[name="granularity"]').forEach((radio) => {
  radio.addEventListener("change", () => {
    state.granularity = radio.value;
    if (state.request) run(state.request, true); // the same sentences, at the other level
  });
});
$("download-png").addEventListener("click", () => download("png"));
$("download-svg").addEventListener("click", () => download("svg"));
loadInfo();
