// A drawing pad for one character, shared by the notebook widget and the web demo.
//
// createPad(container, onImage) draws a white canvas with a black pen (mouse, pen or touch)
// and calls onImage(pngDataUrl) while the user draws (at most every 120 ms) and when a
// stroke ends; onImage("") after Clear. showResults(container, result) draws the top-3 bars
// and the 28x28 picture the model saw. modeSwitch(value, onChange) is the choice between
// the 36-class model and the case-sensitive one.

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
`;

// The values match helpers/webapp.py's MODES and DrawPad's `mode`.
export const MODES = [
  ["36", "36 classes (0-9, A-Z)"],
  ["case", "case-sensitive (0-9, A-Z, a-z)"],
];

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

export function createPad(container, onImage, { size = 280, pen = 18 } = {}) {
  addStyle(container.ownerDocument);
  const wrap = document.createElement("div");
  const canvas = document.createElement("canvas");
  canvas.width = size;
  canvas.height = size;
  canvas.className = "hcr-canvas";
  const clear = document.createElement("button");
  clear.textContent = "Clear";
  clear.className = "hcr-clear";
  wrap.append(canvas, clear);
  container.appendChild(wrap);

  const ctx = canvas.getContext("2d");
  const blank = () => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, size, size);
  };
  blank();
  ctx.lineWidth = pen;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = "#000";

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
    const wait = 120 - (Date.now() - lastSent);
    if (wait <= 0) send();
    else if (!pending) pending = setTimeout(send, wait);
  };
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * size) / r.width, ((e.clientY - r.top) * size) / r.height];
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
  // clear(): as the button does; wipe(): blank the canvas without telling onImage (an upload replaces it).
  return { canvas, clear: () => clear.click(), wipe };
}

export function showResults(container, result) {
  container.replaceChildren();
  if (!result || result.error || !result.top3 || !result.top3.length) {
    const p = document.createElement("div");
    p.className = "hcr-message";
    p.textContent = (result && result.error) || "Draw a character (or upload a picture) and its top-3 guesses appear here.";
    container.appendChild(p);
    return;
  }
  if (result.name) {
    const name = document.createElement("div");
    name.className = "hcr-name";
    name.textContent = `${result.name}:`;
    container.appendChild(name);
  }
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
  if (result.unsure) {
    const unsure = document.createElement("div");
    unsure.className = "hcr-unsure";
    unsure.textContent = "The model is unsure: none of its guesses is likely.";
    container.appendChild(unsure);
  }
  if (result.preview) {
    const seen = document.createElement("div");
    seen.className = "hcr-seen";
    seen.textContent = "what the model saw (28x28):";
    const img = document.createElement("img");
    img.src = result.preview;
    img.alt = "28x28 input";
    seen.appendChild(img);
    container.appendChild(seen);
  }
}

// anywidget entry point: the notebook's DrawPad (helpers/drawpad.py).
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
  createPad(root, (url) => {
    model.set("image", url);
    model.save_changes();
  }, { size: model.get("size"), pen: model.get("pen") });
  root.appendChild(results);
  const update = () => showResults(results, model.get("result"));
  model.on("change:result", update);
  model.on("change:mode", () => { select.value = model.get("mode"); });
  update();
}

export default { render };
