// Multi-select in a grid of cards: "Select" turns selection mode on; then a click toggles a
// card, shift-click selects the range from the last clicked card, "Select all" takes every
// card loaded. The bar tags, untags, pastes copied tags or adds the selection to a playlist.
import { postForm, copiedTags } from "./csrf.js";

const HASH = /\/watch\/([0-9a-f]{16})/;
let anchor = null;

function bar() { return document.querySelector("[data-selection]"); }
function active() { const b = bar(); return b && b.classList.contains("selecting"); }
function cards() { return Array.from(document.querySelectorAll("ul.cards > li.card:not(.folder)")); }
function hashOf(card) { const a = card.querySelector("a"); const m = a && HASH.exec(a.getAttribute("href")); return m ? m[1] : null; }
function selected() { return cards().filter((c) => c.classList.contains("selected")).map(hashOf).filter(Boolean); }

function mark(card, on) {
  card.classList.toggle("selected", on);
  card.setAttribute("aria-selected", on ? "true" : "false");
}

function update() {
  const b = bar();
  if (!b) return;
  const n = selected().length;
  b.querySelector(".sel-count").textContent = `${n} selected`;
}

function status(text) { const s = bar().querySelector(".sel-status"); s.textContent = text; }

function setMode(on) {
  const b = bar();
  b.classList.toggle("selecting", on);
  document.body.classList.toggle("selecting", on);
  b.querySelector("[data-select-toggle]").setAttribute("aria-pressed", on ? "true" : "false");
  b.querySelector("[data-select-toggle]").textContent = on ? "Done" : "Select";
  b.querySelector(".sel-tools").hidden = !on;
  if (!on) cards().forEach((c) => mark(c, false));
  else loadPlaylists();
  anchor = null;
  update();
}

async function loadPlaylists() {
  const b = bar();
  const select = b.querySelector("[data-bulk-playlist]");
  try {
    const r = await fetch(b.dataset.playlists, { headers: { Accept: "application/json" } });
    const data = await r.json();
    select.replaceChildren(new Option("Add to playlist…", ""));
    for (const p of data.playlists) select.add(new Option(`${p.name} (${p.count})`, String(p.id)));
    select.add(new Option("New playlist…", "new"));
  } catch { /* the select keeps its first option */ }
}

function onClick(event) {
  if (!active()) return;
  const card = event.target.closest("ul.cards > li.card:not(.folder)");
  if (!card) return;
  event.preventDefault();
  event.stopPropagation();
  const all = cards();
  if (event.shiftKey && anchor && all.includes(anchor)) {
    const [i, j] = [all.indexOf(anchor), all.indexOf(card)].sort((a, b) => a - b);
    all.slice(i, j + 1).forEach((c) => mark(c, true));
  } else {
    mark(card, !card.classList.contains("selected"));
    anchor = card;
  }
  update();
}

async function bulk(action) {
  const b = bar();
  const media = selected();
  if (!media.length) { status("Select some items first."); return; }
  let tags = b.querySelector("[data-bulk-tag]").value;
  let verb = action;
  if (action === "paste") {
    const copied = copiedTags();
    if (!copied.length) { status("No copied tags: copy them on an item's page first."); return; }
    tags = copied.join(",");
    verb = "add";
  }
  if (!tags.trim()) { status("Type a tag first."); return; }
  try {
    const data = await postForm(b.dataset.bulk, [["action", verb], ["tag", tags], ...media.map((h) => ["media", h])]);
    status(`${verb === "add" ? "Tagged" : "Untagged"} ${data.media} item${data.media === 1 ? "" : "s"}: ${data.tags.join(", ")}.`);
  } catch (e) { status(`Failed: ${e.message}`); }
}

async function toPlaylist(select) {
  const b = bar();
  const media = selected();
  const value = select.value;
  select.value = "";
  if (!value || !media.length) { if (!media.length) status("Select some items first."); return; }
  try {
    if (value === "new") {
      const name = window.prompt("Name of the new playlist");
      if (!name) return;
      await postForm(b.dataset.playlistCreate, [["name", name], ...media.map((h) => ["media", h])]);
      status(`Made playlist ${name} with ${media.length} item${media.length === 1 ? "" : "s"}.`);
    } else {
      const data = await postForm(`${b.dataset.playlists.replace(/\.json$/, "")}/${value}/add`, media.map((h) => ["media", h]));
      status(`Added ${data.added} to the playlist.`);
    }
    loadPlaylists();
  } catch (e) { status(`Failed: ${e.message}`); }
}

export function installSelection() {
  document.addEventListener("click", onClick, true); // capture: before links and the lightbox
  document.addEventListener("click", (event) => {
    const t = event.target.closest("[data-select-toggle], [data-select-all], [data-select-none], [data-bulk]");
    if (!t || !bar() || !bar().contains(t)) return;
    if (t.matches("[data-select-toggle]")) setMode(!active());
    else if (t.matches("[data-select-all]")) { cards().forEach((c) => mark(c, true)); update(); }
    else if (t.matches("[data-select-none]")) { cards().forEach((c) => mark(c, false)); update(); }
    else bulk(t.dataset.bulk);
  });
  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-bulk-playlist]")) toPlaylist(event.target);
  });
}

export function initSelection() {
  const b = bar();
  if (b) b.hidden = false;
}
