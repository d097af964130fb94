// The page's script: uploads the chosen or dropped file to /api/predict and draws the
// answer. Every value from the file (ids, class names, messages) is written with
// textContent or as an SVG attribute, never parsed as HTML; an image is drawn from the
// PNG the server re-encoded from its pixels, and only from a data:image/png URL.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#4a6fd8", "#d8754a", "#1d9a55", "#9a1d8a", "#777"];

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function bars(probabilities, predicted) {
  const box = el("div", "bars");
  for (const [name, p] of Object.entries(probabilities)) {
    const row = el("div", "bar");
    row.dataset.class = name;
    row.appendChild(el("span", "class-name", name));
    const track = el("span", "track");
    const fill = el("span", name === predicted ? "fill chosen" : "fill");
    fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
    fill.style.display = "block";
    track.appendChild(fill);
    row.appendChild(track);
    row.appendChild(el("span", "prob", p.toFixed(4)));
    box.appendChild(row);
  }
  return box;
}

function spectrum(values, wavelengths) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spectrum");
  svg.setAttribute("viewBox", "0 0 320 140");
  let lo = Infinity, hi = -Infinity, wmin = Infinity, wmax = -Infinity;
  for (const [channel, ys] of Object.entries(values)) {
    for (const y of ys) if (y !== null) { lo = Math.min(lo, y); hi = Math.max(hi, y); }
    const wl = wavelengths[channel] || [];
    if (wl.length) { wmin = Math.min(wmin, wl[0]); wmax = Math.max(wmax, wl[wl.length - 1]); }
  }
  if (!(hi > lo) || !(wmax > wmin)) return svg;
  Object.entries(values).forEach(([channel, ys], i) => {
    const wl = wavelengths[channel] || [];
    const points = [];
    ys.forEach((y, j) => {
      if (y === null || wl[j] === undefined) return;
      const x = 4 + ((wl[j] - wmin) / (wmax - wmin)) * 312;
      points.push(`${x.toFixed(1)},${(136 - ((y - lo) / (hi - lo)) * 132).toFixed(1)}`);
    });
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", COLOURS[i % COLOURS.length]);
    line.setAttribute("stroke-width", "1");
    line.setAttribute("data-channel", channel);
    const title = document.createElementNS(SVG, "title");
    title.textContent = `channel ${channel}`;
    line.appendChild(title);
    svg.appendChild(line);
  });
  return svg;
}

const PNG_URL = "data:image/png;base64,";

function picture(url, sampleId) {
  const img = el("img", "picture");
  if (typeof url === "string" && url.startsWith(PNG_URL)) img.src = url;
  img.alt = `image ${sampleId}`;
  return img;
}

function render(answer) {
  const results = document.getElementById("results");
  results.replaceChildren();
  const summary = document.getElementById("summary");
  summary.replaceChildren();
  summary.hidden = false;
  const scored = Object.entries(answer.n_scored).map(([t, n]) => `${t}: ${n} scored`).join("; ");
  summary.appendChild(el("p", "file", `${answer.file}: ${answer.n_samples} samples (${scored})`));
  const drawn = answer.spectra ? answer.spectra.drawn : answer.images ? answer.images.drawn : 0;
  answer.samples.forEach((sample, i) => {
    const section = el("section", "sample");
    section.dataset.sampleId = sample.sample_id;
    const left = el("div", "scores");
    left.appendChild(el("h3", "sample-id", sample.sample_id));
    for (const target of Object.keys(answer.models)) {
      const block = el("div", "target");
      block.dataset.target = target;
      block.appendChild(el("span", "target-name", target));
      const decision = sample.decision[target];
      if (decision === null) {
        block.appendChild(el("span", "reason", `not scored: ${sample.reason[target]}`));
      } else {
        block.appendChild(el("span", decision === "uncertain" ? "decision uncertain" : "decision", decision));
        block.appendChild(bars(sample.probabilities[target], sample.predicted[target]));
      }
      left.appendChild(block);
    }
    section.appendChild(left);
    if (i < drawn && answer.spectra) {
      section.appendChild(spectrum(answer.spectra.values[i], answer.spectra.wavelengths));
    } else if (i < drawn && answer.images.png[i]) {
      section.appendChild(picture(answer.images.png[i], sample.sample_id));
    }
    results.appendChild(section);
  });
  if (answer.samples.length > drawn) {
    const what = answer.images ? "Images" : "Spectra";
    results.appendChild(el("p", "note", `${what} drawn for the first ${drawn} samples.`));
  }
}

async function send(file) {
  const limit = Number(document.body.dataset.maxUploadMb) * 1e6;
  if (file.size > limit) {
    setStatus(`${file.name}: larger than the upload limit`, true);
    return;
  }
  setStatus(`Scoring ${file.name} …`, false);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    const response = await fetch("/api/predict?spectra=1&images=1", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) {
      document.getElementById("results").replaceChildren();
      setStatus(answer.error || `the server answered ${response.status}`, true);
      return;
    }
    render(answer);
    setStatus(`Done: ${answer.n_samples} samples`, false);
  } catch (err) {
    setStatus(`The server could not be reached (${err})`, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("upload");
  const input = document.getElementById("file");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.files.length) send(input.files[0]);
  });
  input.addEventListener("change", () => { if (input.files.length) send(input.files[0]); });
  form.addEventListener("dragover", (event) => { event.preventDefault(); form.classList.add("over"); });
  form.addEventListener("dragleave", () => form.classList.remove("over"));
  form.addEventListener("drop", (event) => {
    event.preventDefault();
    form.classList.remove("over");
    if (event.dataTransfer.files.length) send(event.dataTransfer.files[0]);
  });
});
