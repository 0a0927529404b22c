// A drawing pad for one character or a line of text, shared by the notebook widget and the web demo.
//
// createPad(container, onImage) draws a white canvas with a black pen (mouse, pen or touch)
// and calls onImage(pngDataUrl) while the user draws (at most every 120 ms, 250 ms on the
// wide canvas) and when a stroke ends; onImage("") after Clear. setWide(true) turns the square
// canvas into a wide one (WIDE times as wide) for a word or a line. showResults(container,
// result, mode) draws the top-3 bars and the 28x28 picture the model saw, or the text read,
// its confidence and the normalised line. modeSwitch(value, onChange) is the choice between
// the 36-class model, the case-sensitive one and the line reader ("text").

const STYLE = `
.hcr-pad { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; font-family: system-ui, sans-serif; max-width: 100%; }
.hcr-pad > div { min-width: 0; max-width: 100%; }
.hcr-pad canvas { display: block; max-width: 100%; height: auto; box-sizing: border-box; border: 2px solid #90a4ae;
  border-radius: 6px; background: #fff; touch-action: none; user-select: none; -webkit-user-select: none; cursor: crosshair; }
.hcr-pad button { margin-top: 6px; padding: 4px 14px; font-size: 14px; cursor: pointer; }
.hcr-results { min-width: 0; width: 230px; max-width: 100%; }
.hcr-row { display: flex; align-items: center; gap: 8px; margin: 6px 0; }
.hcr-label { width: 28px; font-size: 22px; font-weight: 600; text-align: center; }
.hcr-bar { height: 18px; background: #1565c0; border-radius: 3px; }
.hcr-row ~ .hcr-row .hcr-bar { background: #90a4ae; }
.hcr-prob { font-size: 13px; color: #37474f; }
.hcr-name { font-size: 14px; color: #37474f; overflow-wrap: anywhere; margin-bottom: 4px; }
.hcr-seen { margin-top: 10px; font-size: 12px; color: #546e7a; }
.hcr-seen img { display: block; width: 84px; height: 84px; image-rendering: pixelated; border: 1px solid #cfd8dc; margin-top: 4px; }
.hcr-unsure { color: #bf360c; font-size: 13px; margin-top: 4px; }
.hcr-message { color: #546e7a; font-size: 14px; overflow-wrap: anywhere; }
.hcr-switch { display: block; margin: 0 0 10px; font-size: 14px; color: #37474f; font-family: system-ui, sans-serif; }
.hcr-switch select { font-size: 14px; max-width: 100%; }
.hcr-pad.hcr-wide > .hcr-drawing { flex: 1 1 100%; }
.hcr-pad canvas.hcr-wide { width: 100%; }
.hcr-pad.hcr-wide .hcr-results { width: 100%; }
.hcr-text { font-size: 30px; font-weight: 600; letter-spacing: 0.03em; white-space: pre-wrap; overflow-wrap: anywhere; }
.hcr-text:empty::before { content: "(no text read)"; font-size: 15px; font-weight: 400; color: #90a4ae; }
.hcr-confidence { font-size: 13px; color: #37474f; margin-top: 2px; }
.hcr-seen img.hcr-line { width: auto; height: 64px; max-width: 100%; object-fit: contain; object-position: left; }
`;

// The values match helpers/webapp.py's MODES and DrawPad's `mode`.
export const MODES = [
  ["36", "36 classes (0-9, A-Z)"],
  ["case", "case-sensitive (0-9, A-Z, a-z)"],
  ["text", "a word or a line (text)"],
];
export const WIDE = 4; // the canvas for a word or a line is WIDE times as wide as it is high

export function addStyle(doc = document) {
  if (doc.getElementById("hcr-pad-style")) return;
  const style = doc.createElement("style");
  style.id = "hcr-pad-style";
  style.textContent = STYLE;
  doc.head.appendChild(style);
}

export function modeSwitch(value, onChange, doc = document) {
  addStyle(doc);
  const label = doc.createElement("label");
  label.className = "hcr-switch";
  label.append("Read as: ");
  const select = doc.createElement("select");
  select.className = "hcr-mode";
  for (const [mode, text] of MODES) select.add(new Option(text, mode));
  select.value = value;
  select.addEventListener("change", () => onChange(select.value));
  label.appendChild(select);
  return { label, select };
}

export function createPad(container, onImage, { size = 280, pen = 18, wide = false } = {}) {
  addStyle(container.ownerDocument);
  const wrap = document.createElement("div");
  wrap.className = "hcr-drawing";
  const canvas = document.createElement("canvas");
  canvas.className = "hcr-canvas";
  const clear = document.createElement("button");
  clear.textContent = "Clear";
  clear.className = "hcr-clear";
  wrap.append(canvas, clear);
  container.appendChild(wrap);

  const ctx = canvas.getContext("2d");
  const blank = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  let every = 120; // ms between two images sent while a stroke goes on
  const shape = (isWide) => { // resizing a canvas blanks it and resets the pen: set both again
    canvas.width = isWide ? WIDE * size : size;
    canvas.height = size;
    canvas.classList.toggle("hcr-wide", isWide);
    container.classList.toggle("hcr-wide", isWide);
    every = isWide ? 250 : 120; // a line costs the server more than a character
    blank();
    ctx.lineWidth = pen;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#000";
  };
  shape(wide);

  let pointer = null; // the one pointer (mouse, pen or finger) that is drawing; a second finger is ignored
  let last = null;
  let lastSent = 0;
  let pending = null;
  const send = () => {
    lastSent = Date.now();
    pending = null;
    onImage(canvas.toDataURL("image/png"));
  };
  const sendSoon = () => {
    const wait = every - (Date.now() - lastSent);
    if (wait <= 0) send();
    else if (!pending) pending = setTimeout(send, wait);
  };
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
  };
  canvas.addEventListener("pointerdown", (e) => {
    if (pointer !== null) return;
    e.preventDefault(); // no text selection, no scrolling, no emulated mouse events
    pointer = e.pointerId;
    last = point(e);
    try {
      canvas.setPointerCapture(e.pointerId);
    } catch {
      // pointer capture is a nicety: strokes that leave the canvas end there without it
    }
    ctx.beginPath();
    ctx.arc(last[0], last[1], pen / 2, 0, 2 * Math.PI);
    ctx.fillStyle = "#000";
    ctx.fill();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (e.pointerId !== pointer) return;
    e.preventDefault();
    const p = point(e);
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
    last = p;
    sendSoon();
  });
  const end = (e) => {
    if (e.pointerId !== pointer) return;
    pointer = null;
    clearTimeout(pending);
    send();
  };
  for (const type of ["pointerup", "pointercancel", "pointerleave"]) canvas.addEventListener(type, end);
  const wipe = () => {
    blank();
    pointer = null;
    clearTimeout(pending);
    pending = null;
  };
  clear.addEventListener("click", () => {
    wipe();
    onImage("");
  });
  // clear(): as the button does; wipe(): blank the canvas without telling onImage (an upload replaces it);
  // setWide(isWide): the square canvas (one character) or the wide one (a line), blank, without telling onImage.
  return {
    canvas,
    clear: () => clear.click(),
    wipe,
    setWide: (isWide) => {
      wipe();
      shape(isWide);
    },
    get wide() {
      return canvas.classList.contains("hcr-wide");
    },
  };
}

const HINTS = {
  text: "Write a word or a line (or upload a picture of one) and the text appears here while you write.",
  char: "Draw a character (or upload a picture) and its top-3 guesses appear here.",
};

export function showResults(container, result, mode = "36") {
  container.replaceChildren();
  const isText = result && typeof result.text === "string";
  if (!result || result.error || (!isText && (!result.top3 || !result.top3.length))) {
    const p = document.createElement("div");
    p.className = "hcr-message";
    p.textContent = (result && result.error) || HINTS[mode === "text" ? "text" : "char"];
    container.appendChild(p);
    return;
  }
  if (result.name) {
    const name = document.createElement("div");
    name.className = "hcr-name";
    name.textContent = `${result.name}:`;
    container.appendChild(name);
  }
  if (isText) showText(container, result);
  else showTop3(container, result);
}

function showTop3(container, result) {
  for (const [label, prob] of result.top3) {
    const row = document.createElement("div");
    row.className = "hcr-row";
    const name = document.createElement("span");
    name.className = "hcr-label";
    name.textContent = label;
    const bar = document.createElement("div");
    bar.className = "hcr-bar";
    bar.style.width = `${Math.max(2, Math.round(160 * prob))}px`;
    const pct = document.createElement("span");
    pct.className = "hcr-prob";
    pct.textContent = `${(100 * prob).toFixed(1)}%`;
    row.append(name, bar, pct);
    container.appendChild(row);
  }
  showNotes(container, result, "The model is unsure: none of its guesses is likely.",
            "what the model saw (28x28):", "28x28 input", "");
}

function showText(container, result) {
  const text = document.createElement("div");
  text.className = "hcr-text";
  text.textContent = result.text;
  const confidence = document.createElement("div");
  confidence.className = "hcr-confidence";
  confidence.textContent = `confidence ${(100 * result.confidence).toFixed(0)}% (its least certain character)`;
  container.append(text, confidence);
  showNotes(container, result, "The model is unsure of at least one character: check this reading.",
            "what the model saw (the line scaled to 32 pixels high):", "the normalised line", "hcr-line");
}

// The "unsure" note and the picture the model saw, under either kind of result.
function showNotes(container, result, unsureText, seenText, alt, imgClass) {
  if (result.unsure) {
    const unsure = document.createElement("div");
    unsure.className = "hcr-unsure";
    unsure.textContent = unsureText;
    container.appendChild(unsure);
  }
  if (result.preview) {
    const seen = document.createElement("div");
    seen.className = "hcr-seen";
    seen.textContent = seenText;
    const img = document.createElement("img");
    if (imgClass) img.className = imgClass;
    img.src = result.preview;
    img.alt = alt;
    seen.appendChild(img);
    container.appendChild(seen);
  }
}

// anywidget entry point: the notebook's DrawPad (helpers/drawpad.py). Switching to or from "text"
// changes the canvas's shape and blanks it; DrawPad clears its `image` and `result` likewise.
function render({ model, el }) {
  const { label, select } = modeSwitch(model.get("mode"), (mode) => {
    model.set("mode", mode);
    model.save_changes();
  });
  el.appendChild(label);
  const root = document.createElement("div");
  root.className = "hcr-pad";
  el.appendChild(root);
  const results = document.createElement("div");
  results.className = "hcr-results";
  const pad = createPad(root, (url) => {
    model.set("image", url);
    model.save_changes();
  }, { size: model.get("size"), pen: model.get("pen"), wide: model.get("mode") === "text" });
  root.appendChild(results);
  const update = () => showResults(results, model.get("result"), model.get("mode"));
  model.on("change:result", update);
  model.on("change:mode", () => {
    const mode = model.get("mode");
    select.value = mode;
    if ((mode === "text") !== pad.wide) pad.setWide(mode === "text");
    update();
  });
  update();
}

export default { render };
