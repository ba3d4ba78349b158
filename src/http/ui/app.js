// The try-it page (GET /). Plain JS, no framework, no inline script: the
// page's Content-Security-Policy allows scripts from this server only.
//
// Rules kept throughout:
// - URLs are relative ("v1/models", never "/v1/models"), so the page works
//   behind a proxy that serves the API under a path prefix;
// - whatever comes from the server (model names, labels, error texts) is
//   inserted with textContent, never as HTML;
// - the API key, when the server wants one, lives in sessionStorage only
//   (gone with the tab) and travels as `Authorization: Bearer`.
"use strict";

const KEY_STORAGE = "seresnext-serve.api-key";
const TOP_K = 5;
// While a model loads, its readiness is asked again this often.
const POLL_MS = 3000;

const $ = (id) => document.getElementById(id);
let pollTimer = null;

function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch (_) {
    return "";
  }
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: "Bearer " + key } : {};
}

function setStatus(text) {
  $("status").textContent = text;
}

// The JSON body of an answer, or a stand-in error for one that is not JSON
// (a proxy's HTML 502, say), so every failure is shown the same way.
async function readJson(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch (_) {
    return {
      error: text.trim().slice(0, 200) || response.statusText,
      error_type: "http_" + response.status,
    };
  }
}

function describe(model) {
  if (!model.ready) {
    return "not ready (" + model.ready_replicas + "/" + model.replicas + " replicas)";
  }
  const parts = ["ready", model.device || model.requested_device, model.dtype];
  if (model.random_weights) parts.push("random weights");
  return parts.join(" · ");
}

async function loadModels() {
  clearTimeout(pollTimer);
  let response;
  try {
    response = await fetch("v1/models", { headers: authHeaders() });
  } catch (err) {
    setStatus("The server cannot be reached: " + err.message);
    return;
  }
  const body = await readJson(response);
  if (response.status === 401) {
    $("key-form").hidden = false;
    setStatus(apiKey() ? "That API key was refused." : "This server needs an API key.");
    return;
  }
  if (!response.ok) {
    setStatus(body.error_type + ": " + body.error);
    return;
  }
  $("key-form").hidden = !apiKey();
  const select = $("model");
  const chosen = select.value;
  select.replaceChildren();
  for (const model of body.models) {
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = model.name + (model.ready ? "" : " (not ready)");
    option.dataset.state = describe(model);
    select.append(option);
  }
  if (body.models.some((m) => m.name === chosen)) select.value = chosen;
  select.disabled = body.models.length === 0;
  showModelState();
  setStatus("");
  if (body.models.some((m) => !m.ready)) pollTimer = setTimeout(loadModels, POLL_MS);
}

function showModelState() {
  const option = $("model").selectedOptions[0];
  $("model-state").textContent = option ? option.dataset.state || "" : "";
}

function addRow(list, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

function showError(card, body) {
  card.dataset.state = "error";
  card.querySelector(".error").hidden = false;
  card.querySelector(".error-type").textContent = body.error_type || "error";
  card.querySelector(".error-text").textContent = body.error || "";
  if (body.error_type === "unauthorized") $("key-form").hidden = false;
}

function showPrediction(card, body, roundTripMs) {
  const list = card.querySelector(".top");
  for (const entry of body.predictions[0].top_k) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = entry.label;
    const probability = document.createElement("span");
    probability.className = "probability";
    probability.textContent = (entry.probability * 100).toFixed(1) + " %";
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    // CSSOM, not a style attribute: the CSP allows no inline styles.
    fill.style.width = Math.max(0, Math.min(1, entry.probability)) * 100 + "%";
    bar.append(fill);
    item.title = "class " + entry.class_id;
    item.append(label, probability, bar);
    list.append(item);
  }
  const timing = card.querySelector(".timing");
  const ms = (value) => value.toFixed(1) + " ms";
  addRow(timing, "preprocess", ms(body.timing.preprocess_ms));
  addRow(timing, "queue", ms(body.timing.queue_ms));
  addRow(timing, "inference", ms(body.timing.inference_ms));
  addRow(timing, "total", ms(body.timing.total_ms));
  addRow(timing, "round trip", ms(roundTripMs));
  if (body.random_weights) addRow(timing, "weights", "random (answers mean nothing)");
  card.dataset.state = "done";
}

async function classify(file) {
  const model = $("model").value;
  const card = $("result-template").content.firstElementChild.cloneNode(true);
  card.dataset.state = "pending";
  const thumb = card.querySelector(".thumb");
  const thumbUrl = URL.createObjectURL(file);
  thumb.src = thumbUrl;
  thumb.addEventListener("load", () => URL.revokeObjectURL(thumbUrl), { once: true });
  thumb.addEventListener("error", () => URL.revokeObjectURL(thumbUrl), { once: true });
  card.querySelector(".name").textContent = file.name + " → " + model;
  $("results").prepend(card);
  const url = "v1/models/" + encodeURIComponent(model) + ":predict?top_k=" + TOP_K;
  const headers = { ...authHeaders(), "Content-Type": file.type || "application/octet-stream" };
  const started = performance.now();
  try {
    const response = await fetch(url, { method: "POST", headers, body: file });
    const body = await readJson(response);
    if (response.ok) {
      showPrediction(card, body, performance.now() - started);
    } else {
      showError(card, body);
    }
  } catch (err) {
    showError(card, { error_type: "network_error", error: err.message });
  } finally {
    card.querySelector(".pending").remove();
  }
}

function classifyAll(files) {
  if (!$("model").value) {
    setStatus("No model to send the images to yet.");
    return;
  }
  // One request per image, all in flight at once: the server batches them.
  for (const file of files) classify(file);
}

function init() {
  $("model").addEventListener("change", showModelState);
  $("files").addEventListener("change", (event) => {
    classifyAll(Array.from(event.target.files));
    event.target.value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    classifyAll(Array.from(event.dataTransfer.files));
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      sessionStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
    } catch (_) {
      setStatus("This browser keeps no session storage; the key cannot be used.");
      return;
    }
    $("api-key").value = "";
    loadModels();
  });
  loadModels();
}

document.addEventListener("DOMContentLoaded", init);
