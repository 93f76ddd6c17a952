"""The rating page: one self-contained HTML document (no external scripts, fonts or styles).

It knows nothing about the study but opaque item ids and image URLs, which the API hands it one
at a time; model names never reach the browser.
"""

from __future__ import annotations

__all__ = ["PAGE"]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Image quality study</title>
<style>
  body { margin: 0; font-family: system-ui, sans-serif; background: #808080; color: #111; }
  main { padding: 1rem; }
  section { max-width: none; }
  .panel { background: #f2f2f2; border-radius: 8px; padding: 1rem 1.5rem; max-width: 44rem; }
  #bar-row { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap;
             background: #f2f2f2; border-radius: 8px; padding: 0.5rem 1rem; }
  #bar { width: 16rem; }
  #buttons { display: flex; gap: 0.5rem; margin: 0.75rem 0; }
  button { font-size: 1rem; padding: 0.4rem 0.9rem; cursor: pointer; }
  button.score { min-width: 6rem; }
  button.score.chosen { outline: 3px solid #0a58ca; background: #cfe2ff; }
  button:disabled { cursor: wait; }
  small { color: #444; }
  .error { color: #b00020; font-weight: 600; }
  .hint { color: #222; font-size: 0.9rem; margin: 0.25rem 0; }
  figure { margin: 0; overflow: auto; }
  figure img { display: block; max-width: none; image-rendering: auto; }
</style>
</head>
<body data-state="start">
<main>
<section id="start-view" class="panel">
  <h1>Image quality study</h1>
  <p>You will see a series of images, one at a time. Rate the quality of each image on a scale
  from 1 (bad) to 5 (excellent), with the keys <kbd>1</kbd>&ndash;<kbd>5</kbd> or the buttons.
  Images are shown at their real size: scroll if one is larger than the window.</p>
  <p>Every rating is saved as soon as you give it. You can close the page at any time and
  continue later by entering the same name.</p>
  <form id="start-form">
    <label>Your name or id:
      <input id="rater-input" name="rater" maxlength="64" autocomplete="off" autofocus></label>
    <button id="start" type="submit">Start</button>
    <button id="new-id" type="button">Give me an id</button>
  </form>
  <p id="start-error" class="error" role="alert"></p>
</section>
<section id="rate-view" hidden>
  <div id="bar-row">
    <span id="who"></span>
    <span id="progress" aria-live="polite"></span>
    <progress id="bar" value="0" max="1"></progress>
    <button id="back" type="button" title="Backspace">&larr; Previous image</button>
  </div>
  <div id="buttons">
    <button class="score" type="button" data-score="1">1<br><small>Bad</small></button>
    <button class="score" type="button" data-score="2">2<br><small>Poor</small></button>
    <button class="score" type="button" data-score="3">3<br><small>Fair</small></button>
    <button class="score" type="button" data-score="4">4<br><small>Good</small></button>
    <button class="score" type="button" data-score="5">5<br><small>Excellent</small></button>
  </div>
  <p class="hint">Keys 1&ndash;5 rate the image shown. Backspace goes back to the image you rated
  last, to change its rating.</p>
  <p id="rate-error" class="error" role="alert"></p>
  <figure><img id="image" alt="image to rate"></figure>
</section>
<section id="done-view" class="panel" hidden>
  <h1>Thank you!</h1>
  <p id="done-text"></p>
</section>
</main>
<script>
"use strict";
const state = { rater: null, token: null, item: null, busy: true, history: [], imageUrl: null };
const $ = (id) => document.getElementById(id);

async function api(method, url, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (state.token) { init.headers.Authorization = `Bearer ${state.token}`; }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    throw new Error((data && data.error) || `the server answered ${response.status}`);
  }
  return data;
}

function setState(name) { document.body.dataset.state = name; }

function show(view) {
  for (const id of ["start-view", "rate-view", "done-view"]) { $(id).hidden = id !== view; }
}

function markScore(score) {
  for (const b of document.querySelectorAll("button.score")) {
    b.classList.toggle("chosen", Number(b.dataset.score) === score);
  }
}

function setBusy(busy) {
  state.busy = busy;
  for (const b of document.querySelectorAll("button.score")) { b.disabled = busy; }
  $("back").disabled = busy || state.history.length === 0;
}

function showProgress(p) {
  $("progress").textContent = `${p.done} of ${p.total} rated`;
  $("bar").max = Math.max(p.total, 1);
  $("bar").value = p.done;
}

function present(p) {
  showProgress(p);
  if (p.finished) {
    state.item = null;
    show("done-view");
    $("done-text").textContent =
      `You rated all ${p.total} images. Your ratings are saved; you can close this page.`;
    setState("finished");
    return;
  }
  showItem(p.item, null);
}

function showItem(item, previousScore) {
  state.item = item;
  setBusy(true);
  setState("loading");
  show("rate-view");
  markScore(previousScore);
  // A fresh element per item: its load event always fires, even for an image seen before.
  const img = new Image();
  img.id = "image";
  img.alt = "image to rate";
  img.width = item.width;
  img.height = item.height;
  img.onload = () => {
    if (state.item !== item) return;
    setBusy(false);
    setState("ready");
  };
  const failed = () => {
    $("rate-error").textContent = "The image could not be loaded; reload the page to retry.";
  };
  img.onerror = failed;
  img.dataset.item = item.item_id;
  $("image").replaceWith(img);
  // Fetched with the rater's token (an <img src> cannot send it), shown from a blob URL.
  fetch(item.image_url, { headers: { Authorization: `Bearer ${state.token}` } })
    .then((response) => (response.ok ? response.blob() : Promise.reject(response.status)))
    .then((blob) => {
      if (state.imageUrl) { URL.revokeObjectURL(state.imageUrl); }
      state.imageUrl = URL.createObjectURL(blob);
      img.src = state.imageUrl;
    })
    .catch(failed);
  window.scrollTo(0, 0);
}

async function start(raterId) {
  $("start-error").textContent = "";
  state.token = null;
  if (raterId) {
    try { state.token = localStorage.getItem(`mos-token:${raterId}`); } catch (e) { }
  }
  try {
    const p = await api("POST", "/api/raters", raterId ? { rater_id: raterId } : {});
    state.rater = p.rater_id;
    if (p.token) { state.token = p.token; }
    state.history = [];
    try {
      localStorage.setItem("mos-rater", p.rater_id);
      localStorage.setItem(`mos-token:${p.rater_id}`, state.token);
    } catch (e) { /* private mode: this tab keeps the token until it is closed */ }
    const url = new URL(window.location.href);
    url.searchParams.set("rater", p.rater_id);
    window.history.replaceState(null, "", url);  // a reload resumes this rater
    $("who").textContent = `Rater: ${p.rater_id}`;
    present(p);
  } catch (e) {
    show("start-view");
    setState("start");
    $("start-error").textContent = e.message;
  }
}

async function rate(score) {
  if (state.busy || !state.item) return;
  const item = state.item;
  setBusy(true);
  setState("saving");
  markScore(score);
  try {
    const p = await api("POST", "/api/ratings",
                        { rater_id: state.rater, item_id: item.item_id, score });
    state.history.push({ item, score });
    $("rate-error").textContent = "";
    present(p);
  } catch (e) {
    $("rate-error").textContent = `Not saved: ${e.message}`;
    markScore(null);
    setBusy(false);
    setState("ready");
  }
}

function back() {
  if (state.busy || state.history.length === 0) return;
  const last = state.history.pop();
  showItem(last.item, last.score);
}

$("start-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("rater-input").value.trim();
  if (!name) {
    $("start-error").textContent = "Enter a name or id, or press \\"Give me an id\\".";
    return;
  }
  start(name);
});
$("new-id").addEventListener("click", () => start(null));
$("back").addEventListener("click", back);
for (const b of document.querySelectorAll("button.score")) {
  b.addEventListener("click", () => rate(Number(b.dataset.score)));
}
document.addEventListener("keydown", (event) => {
  if ($("rate-view").hidden || event.ctrlKey || event.metaKey || event.altKey || event.repeat) {
    return;
  }
  if (event.key >= "1" && event.key <= "5" && event.key.length === 1) {
    event.preventDefault();
    rate(Number(event.key));
  } else if (event.key === "Backspace") {
    event.preventDefault();
    back();
  }
});

const fromUrl = new URLSearchParams(window.location.search).get("rater");
if (fromUrl) {
  start(fromUrl);
} else {
  try { $("rater-input").value = localStorage.getItem("mos-rater") || ""; } catch (e) { }
  setState("start");
}
</script>
</body>
</html>
"""
