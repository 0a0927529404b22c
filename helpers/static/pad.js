// A drawing pad for one character, shared by the notebook widget and the web demo.
//
// createPad(container, onImage) draws a white canvas with a black pen (mouse, pen or touch)
// and calls onImage(pngDataUrl) while the user draws (at most every 120 ms) and when a
// stroke ends; onImage("") after Clear. showResults(container, result) draws the top-3 bars
// and the 28x28 picture the model saw.

const STYLE = `
.hcr-pad { display: flex; gap: 18px; align-items: flex-start; font-family: system-ui, sans-serif; }
.hcr-pad canvas { border: 2px solid #90a4ae; border-radius: 6px; background: #fff; touch-action: none; cursor: crosshair; }
.hcr-pad button { margin-top: 6px; padding: 4px 14px; font-size: 14px; cursor: pointer; }
.hcr-results { min-width: 230px; }
.hcr-row { display: flex; align-items: center; gap: 8px; margin: 6px 0; }
.hcr-label { width: 28px; font-size: 22px; font-weight: 600; text-align: center; }
.hcr-bar { height: 18px; background: #1565c0; border-radius: 3px; }
.hcr-row:not(:first-child) .hcr-bar { background: #90a4ae; }
.hcr-prob { font-size: 13px; color: #37474f; }
.hcr-seen { margin-top: 10px; font-size: 12px; color: #546e7a; }
.hcr-seen img { display: block; width: 84px; height: 84px; image-rendering: pixelated; border: 1px solid #cfd8dc; margin-top: 4px; }
.hcr-message { color: #546e7a; font-size: 14px; }
`;

export function addStyle(doc = document) {
  if (doc.getElementById("hcr-pad-style")) return;
  const style = doc.createElement("style");
  style.id = "hcr-pad-style";
  style.textContent = STYLE;
  doc.head.appendChild(style);
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
  wrap.append(canvas, document.createElement("br"), clear);
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

  let drawing = false;
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
    drawing = true;
    last = point(e);
    canvas.setPointerCapture?.(e.pointerId);
    ctx.beginPath();
    ctx.arc(last[0], last[1], pen / 2, 0, 2 * Math.PI);
    ctx.fillStyle = "#000";
    ctx.fill();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const p = point(e);
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
    last = p;
    sendSoon();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    clearTimeout(pending);
    send();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointerleave", end);
  clear.addEventListener("click", () => {
    blank();
    clearTimeout(pending);
    onImage("");
  });
  return { canvas, clear: () => clear.click() };
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
  update();
}

export default { render };
