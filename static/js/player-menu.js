// The player's one menu: subtitles, audio track, speed and quality, behind one button in the
// controls bar. Keyboard (Enter/Space opens, arrows move, Escape closes; C toggles subtitles)
// and touch friendly (large rows). Tracks come from /media/<hash>/subtitles.json
// (blueprints/subtitles.py); a choice is saved as the person's preference, so the next video
// starts the same way. Text tracks are loaded as cues into TextTracks of our own, asking again
// while the server is still extracting them (the first cues within a second of play).
// Choices that need the server (another audio track, a picture subtitle burned in, a quality)
// go to the playback module (static/js/playback.js: `player.playback.reload({audio, burn, q})`
// plays that rendition from the current position); its decisions (`lvs:decision` on the player)
// bring the quality choices. Without it they are sent as an `lvs:choose` event.

const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];
const POLL_MS = 1000;
const ready = new WeakSet();

function csrf() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

function stamp(text) {
  return text.split(":").reduce((acc, part) => acc * 60 + parseFloat(part), 0);
}

// Parse the server's WebVTT (blueprints/subtitles.py writes it: one timing line, text lines).
export function parseCues(text) {
  const cues = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.trim().split(/\r?\n/);
    const at = lines.findIndex((l) => l.includes("-->"));
    if (at < 0) continue;
    const [from, to] = lines[at].split("-->").map((s) => stamp(s.trim().split(/\s+/)[0]));
    const body = lines.slice(at + 1).join("\n");
    if (Number.isFinite(from) && Number.isFinite(to) && body) cues.push({ from, to, body });
  }
  return cues;
}

function withParam(url, key, value) {
  const u = new URL(url, location.href);
  u.searchParams.set(key, value);
  return u.pathname + u.search;
}

class Menu {
  constructor(root, data) {
    this.root = root;
    this.video = root.querySelector("video");
    this.data = data;
    this.loaded = new Map(); // key -> {track, seen:Set, done}
    this.subtitle = null; // key of the track showing
    this.audio = data.audio.find((a) => a.default)?.index ?? data.audio[0]?.index ?? null;
    this.burn = null;
    this.quality = null;
    this.decision = null; // the playback module's last decision (qualities)
    root.addEventListener("lvs:decision", (e) => {
      this.decision = e.detail;
      if (!this.panel.hidden) this.render();
    });
    // The menu takes over the playback module's own quality list (one control for all choices).
    root.classList.add("has-menu");
    // The browser's own <track>s are for pages without JavaScript; ours replace them.
    for (const t of this.video.querySelectorAll("track")) t.remove();
    this.build();
    const first = data.choice.subtitle;
    if (first) this.chooseSubtitle(first, false);
    if (data.choice.audio !== null && data.choice.audio !== this.audio) {
      // After the playback module's first decision, so that its answer cannot overtake ours.
      const pb = window.lvsPlayer?.root === root ? window.lvsPlayer.playback : null;
      const go = () => this.chooseAudio(data.choice.audio, false);
      if (!pb || pb.decision) go();
      else root.addEventListener("lvs:decision", go, { once: true });
    }
  }

  build() {
    const bar = this.root.querySelector(".controls-bar");
    this.button = document.createElement("button");
    this.button.type = "button";
    this.button.className = "menu-toggle";
    this.button.dataset.menuToggle = "";
    this.button.setAttribute("aria-haspopup", "menu");
    this.button.setAttribute("aria-expanded", "false");
    this.button.setAttribute("aria-label", "Subtitles, audio and speed");
    this.button.textContent = "CC ⚙";
    const before = bar.querySelector('[data-action="fullscreen"]');
    bar.insertBefore(this.button, before);
    this.panel = document.createElement("div");
    this.panel.className = "player-menu";
    this.panel.setAttribute("role", "menu");
    this.panel.setAttribute("aria-label", "Player settings");
    this.panel.hidden = true;
    this.root.appendChild(this.panel);
    this.render();
    this.button.addEventListener("click", () => this.toggle());
    this.panel.addEventListener("click", (e) => {
      e.stopPropagation(); // a click inside keeps it open (render() replaces the clicked row)
      const item = e.target.closest("[data-choose]");
      if (item) this.pick(item.dataset.choose, item.dataset.value);
    });
    this.panel.addEventListener("keydown", (e) => this.onKey(e));
    document.addEventListener("click", (e) => {
      if (!this.root.isConnected || this.panel.hidden) return;
      if (!this.panel.contains(e.target) && e.target !== this.button) this.close(false);
    });
  }

  item(group, value, label, checked, note = "") {
    const b = document.createElement("button");
    b.type = "button";
    b.setAttribute("role", "menuitemradio");
    b.setAttribute("aria-checked", checked ? "true" : "false");
    b.dataset.choose = group;
    b.dataset.value = value;
    b.textContent = label;
    if (note) {
      const small = document.createElement("small");
      small.textContent = note;
      b.appendChild(small);
    }
    return b;
  }

  section(title, items) {
    const box = document.createElement("div");
    box.className = "group";
    box.setAttribute("role", "group");
    const h = document.createElement("p");
    h.className = "heading";
    h.textContent = title;
    box.setAttribute("aria-label", title);
    box.append(h, ...items);
    return box;
  }

  qualities() {
    const d = this.decision || window.lvsPlayer?.playback?.decision;
    if (!d || !Array.isArray(d.qualities)) return [];
    if (!d.qualities.length) return [];
    const labels = { auto: "Auto", original: "Original", max: "Best" };
    return ["auto", ...d.qualities].map((q) => ({
      value: String(q), label: labels[q] || (/^\d+$/.test(q) ? `${q}p` : String(q)),
      current: String(q) === String(this.quality ?? d.quality ?? "auto"),
    }));
  }

  render() {
    const d = this.data;
    const subs = [this.item("subtitle", "", "Off", this.subtitle === null && this.burn === null)];
    for (const t of d.subtitles) {
      if (t.status === "failed") continue;
      const on = t.kind === "picture" ? this.burn === t.stream_index : this.subtitle === t.key;
      const note = t.kind === "picture" ? "picture · burned in" : "";
      subs.push(this.item("subtitle", t.key, t.label, on, note));
    }
    const groups = [this.section("Subtitles", subs)];
    if (d.audio.length > 1) {
      groups.push(this.section("Audio", d.audio.map((a) => this.item("audio", String(a.index), a.label, a.index === this.audio))));
    }
    const rate = this.video.playbackRate;
    groups.push(this.section("Speed", SPEEDS.map((s) => this.item("speed", String(s), s === 1 ? "Normal" : `${s}×`, Math.abs(rate - s) < 0.01))));
    const qualities = this.qualities();
    if (qualities.length) {
      groups.push(this.section("Quality", qualities.map((q) => this.item("quality", q.value, q.label, q.current))));
    }
    this.panel.replaceChildren(...groups);
  }

  items() {
    return [...this.panel.querySelectorAll("[role=menuitemradio]")];
  }

  toggle() {
    if (this.panel.hidden) this.open();
    else this.close();
  }

  open() {
    this.render();
    this.panel.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    const items = this.items();
    (items.find((i) => i.getAttribute("aria-checked") === "true") || items[0])?.focus();
  }

  close(focus = true) {
    this.panel.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    if (focus) this.button.focus();
  }

  onKey(e) {
    const items = this.items();
    const at = items.indexOf(document.activeElement);
    let to = null;
    switch (e.key) {
      case "ArrowDown": to = (at + 1) % items.length; break;
      case "ArrowUp": to = (at - 1 + items.length) % items.length; break;
      case "Home": to = 0; break;
      case "End": to = items.length - 1; break;
      case "Escape": this.close(); break;
      case "Tab": this.close(false); return;
      case "Enter": case " ": return e.stopPropagation(); // the button's own click
      default: return;
    }
    e.preventDefault();
    e.stopPropagation(); // not the player's arrow keys (volume, seek)
    if (to !== null) items[to].focus();
  }

  pick(group, value) {
    if (group === "subtitle") this.chooseSubtitle(value || null, true);
    else if (group === "audio") this.chooseAudio(Number(value), true);
    else if (group === "speed") this.video.playbackRate = Number(value);
    else if (group === "quality") this.chooseQuality(value);
    this.render();
    const again = this.items().find((i) => i.dataset.choose === group && i.dataset.value === value);
    if (again && !this.panel.hidden) again.focus();
  }

  track(key) {
    return this.data.subtitles.find((t) => t.key === key);
  }

  chooseSubtitle(key, save) {
    const t = key ? this.track(key) : null;
    for (const [k, entry] of this.loaded) entry.track.mode = k === key ? "showing" : "disabled";
    const hadBurn = this.burn !== null;
    this.subtitle = null;
    if (t && t.kind === "picture") {
      this.burn = t.stream_index;
      this.server({ burn: t.stream_index });
    } else {
      this.burn = null;
      if (hadBurn) this.server({ burn: null });
      if (t) { this.subtitle = key; this.load(t); }
    }
    this.root.dataset.subtitle = this.subtitle || (this.burn !== null ? `burn:${this.burn}` : "");
    if (save) {
      const body = { subtitles_on: t ? "1" : "0" };
      if (t && t.language) body.subtitle_language = t.language;
      this.save(body);
    }
  }

  load(t) {
    let entry = this.loaded.get(t.key);
    if (!entry) {
      const track = this.video.addTextTrack("subtitles", t.label, t.language || "");
      entry = { track, seen: new Set(), done: false, key: t.key };
      this.loaded.set(t.key, entry);
      this.fetchCues(t, entry);
    }
    entry.track.mode = "showing";
  }

  async fetchCues(t, entry) {
    try {
      const response = await fetch(withParam(t.url, "partial", "1"), { credentials: "same-origin" });
      if (!response.ok) { entry.failed = response.status; return; }
      for (const c of parseCues(await response.text())) {
        const id = `${c.from}|${c.to}|${c.body}`;
        if (entry.seen.has(id)) continue;
        entry.seen.add(id);
        entry.track.addCue(new VTTCue(c.from, c.to, c.body));
      }
      entry.done = response.headers.get("X-Subtitles-Complete") !== "0";
    } catch {
      entry.done = false;
    }
    if (!entry.done && document.contains(this.video)) setTimeout(() => this.fetchCues(t, entry), POLL_MS);
  }

  chooseAudio(index, save) {
    this.audio = index;
    const a = this.data.audio.find((x) => x.index === index);
    const def = this.data.audio.find((x) => x.default) || this.data.audio[0];
    this.server({ audio: a && def && a.index === def.index ? null : index });
    if (save && a && a.language) this.save({ audio_language: a.language });
  }

  chooseQuality(value) {
    this.quality = value;
    this.server({ q: value });
  }

  // Ask the playback module for another rendition (audio track, burn-in, quality).
  server(change) {
    const p = window.lvsPlayer;
    if (p && p.root === this.root && p.playback && typeof p.playback.reload === "function") p.playback.reload(change);
    else this.root.dispatchEvent(new CustomEvent("lvs:choose", { detail: change, bubbles: true }));
  }

  save(fields) {
    const body = new URLSearchParams(fields);
    fetch(this.data.prefs_url, {
      method: "POST", body, credentials: "same-origin", headers: { "X-CSRFToken": csrf() },
    }).catch(() => {});
  }

  cycleSubtitles() {
    const text = this.data.subtitles.filter((t) => t.kind === "text" && t.status !== "failed");
    if (!text.length) return;
    const at = text.findIndex((t) => t.key === this.subtitle);
    const next = at + 1 < text.length ? text[at + 1].key : null;
    this.chooseSubtitle(next, true);
    if (!this.panel.hidden) this.render();
  }
}

let current = null;

function onKey(event) {
  if (!current || !document.contains(current.root)) return;
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const tag = event.target.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
  if (event.key === "c" || event.key === "C") { current.cycleSubtitles(); event.preventDefault(); }
}

export function installPlayerMenu() {
  document.addEventListener("keydown", onKey);
}

// Set up the menu of a newly loaded watch page, once.
export async function initPlayerMenu(root) {
  const el = root.querySelector ? root.querySelector("[data-player][data-tracks]") : null;
  if (!el || ready.has(el)) return;
  ready.add(el);
  try {
    const response = await fetch(el.dataset.tracks, { credentials: "same-origin" });
    if (!response.ok) return;
    current = new Menu(el, await response.json());
    window.lvsPlayerMenu = current; // for the browser tests and the console
  } catch {
    // No menu: the browser's own controls still have the <track>s.
  }
}
