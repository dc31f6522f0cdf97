// Live pages (issue 19): a visible page asks the change feed (blueprints/live.py) every few
// seconds whether anything it shows changed — a 204 when nothing did — and a hidden page does
// not ask at all. What changed is put in place without a reload: new cards in the folder,
// search results, home and tag rows (or a quiet "N new" pill when inserting would move what the
// person is looking at), thumbnails for placeholders, "Removed" on a card whose file went,
// a rating or tags changed on another device, and for admins the header's running-jobs
// indicator. The page's feed token and what it shows come from #live (templates/live/header.html).

const BACKOFF_MAX_MS = 30000;
const REGIONS = ["listing", "results", "recent", "tagged"];

let live = null; // {el, feed, token, poll, folder, media}
let timer = null;
let failures = 0;
const pending = new Map(); // region id -> its fresh copy, waiting behind the pill

function schedule(ms) {
  clearTimeout(timer);
  timer = null;
  if (live && document.visibilityState === "visible") timer = setTimeout(poll, ms);
}

function backoff() {
  failures += 1;
  return Math.min(BACKOFF_MAX_MS, live.poll * 2 ** Math.min(failures, 4));
}

async function poll() {
  timer = null;
  const asked = live;
  if (!asked || document.visibilityState !== "visible") return;
  let response;
  try {
    response = await fetch(`${asked.feed}?since=${encodeURIComponent(asked.token)}`, {
      cache: "no-store", credentials: "same-origin", redirect: "manual",
      headers: { Accept: "application/json" },
    });
  } catch {
    if (asked === live) schedule(backoff());
    return;
  }
  if (asked !== live) return; // another page came in meanwhile: it polls on its own
  if (response.status === 204) { failures = 0; schedule(live.poll); return; }
  if (!response.ok) {
    // Signed out (a redirect to the sign-in page), or not allowed: stop asking.
    if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) return;
    schedule(backoff());
    return;
  }
  const before = asked.token;
  try {
    const changes = await response.json();
    failures = 0;
    asked.token = changes.token;
    await apply(changes);
  } catch {
    // Cut off mid-answer or mid-fetch of a region (the server went away): the next poll asks
    // for the same changes again (putting them in place twice changes nothing).
    asked.token = before;
  } finally {
    if (asked === live) schedule(live.poll);
  }
}

async function apply(c) {
  if (c.activity) showActivity(c.activity);
  const seq = c.token.split("-")[0];
  for (const hash of c.gone) markGone(hash, true);
  for (const hash of c.added) markGone(hash, false);
  for (const hash of c.thumbs) refreshThumb(hash, seq);
  const filesMoved = c.reset || c.added.length > 0 || c.gone.length > 0;
  const work = [];
  for (const id of REGIONS) {
    if (!document.getElementById(id)) continue;
    let wanted = filesMoved;
    if (id === "listing") wanted = c.reset || (live.folder && c.folders.includes(Number(live.folder)));
    if (id === "tagged") wanted = c.reset || c.meta.length > 0 || filesMoved;
    if (wanted) work.push(refreshRegion(id));
  }
  if (live.media && (c.reset || c.meta.includes(live.media))) work.push(refreshWatch());
  await Promise.all(work);
}

// -- cards ---------------------------------------------------------------------------------

function cardsOf(list) {
  return Array.from(list.children).filter((li) => li.matches("li.card"));
}

// A card is its link (the media) and its title: two copies of one file are two cards.
function keyOf(li) {
  const a = li.querySelector("a");
  const title = li.querySelector(".title");
  return a ? `${a.getAttribute("href")}|${title ? title.textContent : ""}` : null;
}

function markGone(hash, gone) {
  for (const link of document.querySelectorAll(`li.card > a[href*="/${hash}"]`)) {
    const card = link.parentElement;
    if (card.classList.contains("gone") === gone) continue;
    card.classList.toggle("gone", gone);
    const thumb = link.querySelector(".thumb");
    const badge = thumb && thumb.querySelector(".gone-badge");
    if (gone && thumb && !badge) {
      const b = document.createElement("span");
      b.className = "badge gone-badge";
      b.textContent = "Removed";
      thumb.append(b);
    } else if (!gone && badge) {
      badge.remove();
    }
  }
}

function refreshThumb(hash, seq) {
  for (const img of document.querySelectorAll(`img[src*="/${hash}/thumb"]`)) {
    const url = new URL(img.getAttribute("src"), location.href);
    url.searchParams.set("v", seq);
    img.src = url.pathname + url.search;
  }
  for (const video of document.querySelectorAll(`video[poster*="/${hash}/thumb"]`)) {
    const url = new URL(video.getAttribute("poster"), location.href);
    url.searchParams.set("v", seq);
    video.poster = url.pathname + url.search;
  }
}

async function fetchRegion(id) {
  const response = await fetch(location.href, {
    cache: "no-store", credentials: "same-origin", redirect: "manual",
    headers: { "HX-Request": "true", "HX-Target": id, "HX-Current-URL": location.href },
  });
  if (!response.ok) return null;
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  return doc.getElementById(id);
}

async function refreshRegion(id) {
  const fresh = await fetchRegion(id);
  const el = document.getElementById(id);
  if (fresh && el) merge(el, fresh, false);
}

// Put the fresh copy's new cards into the region: each after the card it follows there. When
// that would move what is on screen (the person scrolled, and a card would land above the
// bottom of the screen), the cards wait behind a pill that says how many.
function merge(el, fresh, force) {
  const list = el.querySelector("ul.cards");
  const freshList = fresh.querySelector("ul.cards");
  if (!freshList) return;
  if (!list) { // it was empty: nothing on screen to move
    el.replaceWith(document.adoptNode(fresh));
    window.htmx.process(fresh);
    return;
  }
  const have = new Map(cardsOf(list).map((li) => [keyOf(li), li]));
  const incoming = cardsOf(freshList);
  const added = incoming.filter((li) => !have.has(keyOf(li)));
  if (!added.length) { pending.delete(el.id); updatePill(el); return; }
  if (!force && wouldMove(list, incoming, have)) {
    pending.set(el.id, fresh);
    updatePill(el, added.length);
    return;
  }
  pending.delete(el.id);
  updatePill(el);
  let cursor = null;
  const placed = [];
  for (const li of incoming) {
    const old = have.get(keyOf(li));
    if (old) { cursor = old; continue; }
    const node = document.adoptNode(li);
    node.classList.add("live-new");
    if (cursor) cursor.after(node);
    else list.prepend(node);
    cursor = node;
    placed.push(node);
  }
  const count = el.querySelector(".count[data-matches]");
  const freshCount = fresh.querySelector(".count[data-matches]");
  if (count && freshCount) count.replaceWith(document.adoptNode(freshCount));
  for (const node of placed) window.htmx.process(node);
  return placed;
}

function wouldMove(list, incoming, have) {
  if (window.scrollY < 8) return false; // at the top: the new cards come in as the person sees
  let anchor = null;
  for (const li of incoming) {
    const old = have.get(keyOf(li));
    if (old) { anchor = old; continue; }
    const top = anchor ? anchor.getBoundingClientRect().bottom : list.getBoundingClientRect().top;
    if (top < window.innerHeight) return true;
  }
  return false;
}

function updatePill(el, count = 0) {
  let pill = el.querySelector(":scope > .live-pill");
  if (!count) { if (pill) pill.remove(); return; }
  if (!pill) {
    pill = document.createElement("button");
    pill.type = "button";
    pill.className = "live-pill";
    pill.addEventListener("click", () => {
      const fresh = pending.get(el.id);
      if (!fresh) return;
      const placed = merge(el, fresh, true);
      if (placed && placed[0]) placed[0].scrollIntoView({ block: "center" });
      if (placed && placed[0]) placed[0].querySelector("a")?.focus({ preventScroll: true });
    });
    el.prepend(pill);
  }
  pill.textContent = `${count} new`;
}

// The watch page: its rating and tags, as changed on another device (not while being edited).
async function refreshWatch() {
  const response = await fetch(location.href, {
    cache: "no-store", credentials: "same-origin", redirect: "manual",
  });
  if (!response.ok) return;
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ["rating", "tags"]) {
    const el = document.getElementById(id);
    const fresh = doc.getElementById(id);
    if (!el || !fresh || el.contains(document.activeElement)) continue;
    if (el.innerHTML === fresh.innerHTML) continue;
    el.replaceWith(document.adoptNode(fresh));
    window.htmx.process(fresh);
  }
}

// -- the admin's indicator -----------------------------------------------------------------

const NAMES = { scan: "Scanning", probe: "Reading files", transcode: "Transcoding" };

function showActivity(a) {
  const el = document.getElementById("live-activity");
  if (!el) return;
  const parts = [];
  let percent = null;
  for (const job of a.running) {
    if (job.kind === "thumbnail" || job.kind === "sprite") continue;
    let text = NAMES[job.kind] || job.kind;
    if (job.percent !== null) { text += ` ${Math.round(job.percent)}%`; percent ??= job.percent; }
    else if (job.phase) text += ` · ${job.phase}`;
    parts.push(text);
  }
  const previews = a.running.filter((j) => j.kind === "thumbnail" || j.kind === "sprite").length +
    (a.queued.thumbnail || 0) + (a.queued.sprite || 0);
  if (previews) parts.push(`Previews · ${previews} left`);
  if (a.queued.scan) parts.push("Scan waiting");
  if (a.queued.transcode) parts.push(`Transcodes · ${a.queued.transcode} waiting`);
  if (!parts.length) { el.hidden = true; el.replaceChildren(); return; }
  const label = document.createElement("span");
  label.textContent = parts.join(" · ");
  const children = [label];
  if (percent !== null) {
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = percent;
    bar.setAttribute("aria-hidden", "true");
    children.push(bar);
  }
  el.replaceChildren(...children);
  el.title = parts.join("\n");
  el.hidden = false;
}

// -- wiring --------------------------------------------------------------------------------

// A newly loaded page (first load or boosted navigation): read its #live and start asking.
export function initLive() {
  const el = document.getElementById("live");
  if (!el) { live = null; schedule(0); return; }
  if (live && live.el === el) return;
  live = {
    el,
    feed: el.dataset.feed,
    token: el.dataset.token,
    poll: Number(el.dataset.poll) || 2000,
    folder: el.dataset.folder || null,
    media: el.dataset.media || null,
  };
  pending.clear();
  failures = 0;
  // Admins ask at once: the indicator shows what runs right now.
  schedule(document.getElementById("live-activity") ? 50 : live.poll);
}

export function installLive() {
  // Shown again: ask at once. Hidden: schedule() drops the pending poll and sets none.
  document.addEventListener("visibilitychange", () => schedule(0));
  const sw = document.querySelector('meta[name="lvs-sw"]');
  if (sw && "serviceWorker" in navigator) {
    navigator.serviceWorker.register(sw.content, { scope: sw.dataset.scope }).catch(() => {});
  }
}
