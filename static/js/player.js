// The watch page's player: controls that are always there (no hover on a headset or a phone),
// resume, progress reports, scrub previews from the sprite VTT, keyboard shortcuts, and
// autoplay through the folder. One player per page; set up again for each boosted page.
// How the video is fetched (the original, or HLS from the server, with the quality menu) is
// playback.js's: `this.playback`.

import { Playback } from "./playback.js";

const SAVE_EVERY_MS = 5000;
const COUNTDOWN_S = 5;
const AUTOPLAY_KEY = "lvs-autoplay-next";
const AUTOPLAY_PREF = "lvs-autoplay";

const ready = new WeakSet();
let active = null; // the player on show, for the document-wide keyboard shortcuts

function clock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

// crypto.randomUUID needs a secure context; a LAN address over http is not one.
function viewingId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Parse the sprite WebVTT: cues "start --> end" with a payload "sprite.jpg#xywh=x,y,w,h".
function parseVtt(text, base) {
  const cues = [];
  const stamp = (t) => t.split(":").reduce((acc, part) => acc * 60 + parseFloat(part), 0);
  for (const block of text.split(/\r?\n\r?\n/)) {
    const lines = block.trim().split(/\r?\n/);
    const timing = lines.findIndex((l) => l.includes("-->"));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [from, to] = lines[timing].split("-->").map((s) => stamp(s.trim().split(" ")[0]));
    const [file, frag] = lines[timing + 1].trim().split("#xywh=");
    if (!frag) continue;
    const [x, y, w, h] = frag.split(",").map(Number);
    cues.push({ from, to, url: new URL(file, base).href, x, y, w, h });
  }
  return cues;
}

class Player {
  constructor(root) {
    this.root = root;
    this.video = root.querySelector("video");
    this.seek = root.querySelector(".seek");
    this.toggleButton = root.querySelector('[data-action="toggle"]');
    this.muteButton = root.querySelector('[data-action="mute"]');
    this.now = root.querySelector(".now");
    this.total = root.querySelector(".total");
    this.preview = root.querySelector(".scrub-preview");
    this.progressUrl = root.dataset.progress;
    this.resume = parseFloat(root.dataset.resume || "0");
    this.viewing = null;
    this.lastSaved = -1;
    this.dragging = false;
    this.cues = [];
    this.countdown = null;
    this.video.controls = false; // ours replace the browser's (kept for pages without JS)
    this.bind();
    this.playback = new Playback(this);
    if (this.video.readyState >= 1) this.onMetadata(); // it came before this module ran
    if (root.dataset.sprites) this.loadSprites(root.dataset.sprites);
    if (sessionStorage.getItem(AUTOPLAY_KEY) === "1") {
      sessionStorage.removeItem(AUTOPLAY_KEY);
      this.play();
    }
  }

  bind() {
    const v = this.video;
    this.root.addEventListener("click", (e) => {
      const button = e.target.closest("[data-action]");
      if (button) this.action(button.dataset.action);
    });
    v.addEventListener("click", () => this.toggle());
    v.addEventListener("dblclick", () => this.fullscreen());
    v.addEventListener("loadedmetadata", () => this.onMetadata());
    v.addEventListener("timeupdate", () => this.onTime());
    v.addEventListener("play", () => this.onPlayState());
    v.addEventListener("playing", () => {
      if (!this.viewing) this.viewing = viewingId();
    });
    v.addEventListener("pause", () => { this.onPlayState(); this.save(); });
    v.addEventListener("seeked", () => { if (v.paused) this.save(); });
    v.addEventListener("ended", () => this.onEnded());
    v.addEventListener("volumechange", () => {
      this.root.classList.toggle("muted", v.muted || v.volume === 0);
      this.muteButton.setAttribute("aria-label", v.muted ? "Unmute" : "Mute");
    });
    this.seek.addEventListener("input", () => {
      this.dragging = true;
      this.showPreview(parseFloat(this.seek.value), this.seek.value / (this.seek.max || 1));
      this.now.textContent = clock(parseFloat(this.seek.value));
    });
    this.seek.addEventListener("change", () => {
      this.dragging = false;
      v.currentTime = parseFloat(this.seek.value);
      this.hidePreview();
    });
    this.seek.addEventListener("pointermove", (e) => {
      const r = this.seek.getBoundingClientRect();
      const frac = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
      this.showPreview(frac * (parseFloat(this.seek.max) || 0), frac);
    });
    this.seek.addEventListener("pointerleave", () => { if (!this.dragging) this.hidePreview(); });
    this.timer = setInterval(() => { if (!v.paused && !v.ended) this.save(); }, SAVE_EVERY_MS);
    // The countdown's Cancel sits beside the player, not in it (issue 16: it did nothing).
    const cancel = document.querySelector("[data-action='cancel-next']");
    if (cancel) cancel.addEventListener("click", () => this.cancelCountdown());
    const box = document.querySelector("[data-autoplay]");
    if (box) {
      box.checked = localStorage.getItem(AUTOPLAY_PREF) !== "0";
      box.addEventListener("change", () => localStorage.setItem(AUTOPLAY_PREF, box.checked ? "1" : "0"));
    }
  }

  action(name) {
    switch (name) {
      case "play": case "toggle": this.toggle(); break;
      case "mute": this.video.muted = !this.video.muted; break;
      case "fullscreen": this.fullscreen(); break;
      case "next": this.go("next-link"); break;
      case "prev": this.go("prev-link"); break;
      case "restart": this.video.currentTime = 0; this.root.querySelector(".resumed").hidden = true; this.play(); break;
      case "try": this.root.classList.add("tried"); this.video.preload = "auto"; this.play(); break;
      case "cancel-next": this.cancelCountdown(); break;
    }
  }

  play() {
    const p = this.video.play();
    if (p) p.catch(() => {}); // autoplay refused: the big play button stays
  }

  toggle() {
    if (this.video.paused || this.video.ended) this.play();
    else this.video.pause();
  }

  fullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (this.root.requestFullscreen) this.root.requestFullscreen().catch(() => {});
    else if (this.video.webkitEnterFullscreen) this.video.webkitEnterFullscreen(); // iPhone
  }

  // Follow the page's prev/next link: a boosted navigation keeps this document, so the next
  // video may start with sound (the user has interacted with the page).
  go(id, autoplay = false) {
    const link = document.getElementById(id);
    if (!link) return;
    this.save();
    if (autoplay) sessionStorage.setItem(AUTOPLAY_KEY, "1");
    link.click();
  }

  onMetadata() {
    const d = this.video.duration;
    if (Number.isFinite(d)) {
      this.seek.max = d.toFixed(2);
      this.total.textContent = clock(d);
    }
    if (this.resume > 0 && this.resume < (d || Infinity)) {
      this.video.currentTime = this.resume;
      const note = this.root.querySelector(".resumed");
      note.querySelector("span").textContent = clock(this.resume);
      note.hidden = false;
      this.resume = 0;
    }
  }

  onTime() {
    if (this.dragging) return;
    const t = this.video.currentTime;
    this.seek.value = t;
    this.now.textContent = clock(t);
  }

  onPlayState() {
    const playing = !this.video.paused;
    this.root.classList.toggle("playing", playing);
    this.toggleButton.setAttribute("aria-label", playing ? "Pause" : "Play");
  }

  onEnded() {
    this.save(true);
    this.viewing = null; // playing again is a new viewing
    const box = document.querySelector("[data-autoplay]");
    const countdown = document.querySelector(".countdown");
    if (!box || !box.checked || !countdown || !document.getElementById("next-link")) return;
    let left = COUNTDOWN_S;
    countdown.hidden = false;
    countdown.querySelector("span").textContent = left;
    this.countdown = setInterval(() => {
      left -= 1;
      countdown.querySelector("span").textContent = left;
      if (left <= 0) {
        this.cancelCountdown();
        this.go("next-link", true);
      }
    }, 1000);
  }

  cancelCountdown() {
    clearInterval(this.countdown);
    this.countdown = null;
    const countdown = document.querySelector(".countdown");
    if (countdown) countdown.hidden = true;
  }

  // Report the position. `beacon` for the page going away, where a fetch may be cut off.
  save(ended = false, beacon = false) {
    const v = this.video;
    if (!this.viewing || !this.progressUrl) return;
    const duration = v.duration;
    const position = ended ? duration : v.currentTime;
    if (!Number.isFinite(position) || !Number.isFinite(duration)) return;
    if (!ended && Math.abs(position - this.lastSaved) < 0.5) return;
    this.lastSaved = position;
    const body = new URLSearchParams({
      position: position.toFixed(2),
      duration: duration.toFixed(2),
      viewing: this.viewing,
      // In the body, not a header: sendBeacon cannot set headers (CSRF, blueprints/access.py).
      csrf_token: document.querySelector('meta[name="csrf-token"]')?.content ?? "",
    });
    if (beacon && navigator.sendBeacon) {
      navigator.sendBeacon(this.progressUrl, body);
      return;
    }
    fetch(this.progressUrl, { method: "POST", body, keepalive: true, credentials: "same-origin" })
      .catch(() => {});
  }

  async loadSprites(url) {
    try {
      const response = await fetch(url);
      if (response.ok) this.cues = parseVtt(await response.text(), response.url);
    } catch {
      this.cues = [];
    }
  }

  showPreview(time, frac) {
    const cue = this.cues.find((c) => time >= c.from && time < c.to);
    const box = this.preview;
    if (!cue) { this.hidePreview(); return; }
    const img = box.querySelector(".img");
    img.style.width = `${cue.w}px`;
    img.style.height = `${cue.h}px`;
    img.style.backgroundImage = `url("${cue.url}")`;
    img.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    box.querySelector(".t").textContent = clock(time);
    const stage = this.root.querySelector(".stage").getBoundingClientRect();
    const bar = this.seek.getBoundingClientRect();
    const x = bar.left - stage.left + frac * bar.width;
    box.style.left = `${Math.min(stage.width - cue.w / 2 - 4, Math.max(cue.w / 2 + 4, x))}px`;
    box.hidden = false;
  }

  hidePreview() {
    this.preview.hidden = true;
  }

  destroy() {
    this.save(false, true);
    clearInterval(this.timer);
    this.cancelCountdown();
    this.playback.destroy();
  }
}

function typing(target) {
  const tag = target.tagName;
  return tag === "SELECT" || tag === "TEXTAREA" || (tag === "INPUT" && target.type !== "range");
}

// Keyboard shortcuts of the watch page. n/p (and the arrows on a picture) follow the page's
// own prev/next links, so they work from the moment the page is in, player or not.
function onKey(event) {
  if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
  if (event.target.closest && event.target.closest("ul.cards")) return; // the cards' own arrows
  const picture = document.querySelector(".watch .picture-view");
  const step = { n: "next-link", N: "next-link", p: "prev-link", P: "prev-link" };
  if (picture) Object.assign(step, { ArrowRight: "next-link", ArrowLeft: "prev-link" });
  if (step[event.key]) {
    const link = document.getElementById(step[event.key]);
    if (!link) return;
    event.preventDefault();
    if (active && document.contains(active.root)) active.save();
    link.click();
    return;
  }
  const p = active;
  if (!p || !document.contains(p.root)) return;
  const v = p.video;
  const onSeek = event.target === p.seek;
  switch (event.key) {
    case " ": case "k": case "K":
      if (event.target.tagName === "BUTTON" && event.key === " ") return; // the button's own Space
      p.toggle(); break;
    case "ArrowRight": if (onSeek) return; v.currentTime = Math.min(v.duration || Infinity, v.currentTime + 10); break;
    case "ArrowLeft": if (onSeek) return; v.currentTime = Math.max(0, v.currentTime - 10); break;
    case "ArrowUp": if (onSeek) return; v.volume = Math.min(1, v.volume + 0.1); v.muted = false; break;
    case "ArrowDown": if (onSeek) return; v.volume = Math.max(0, v.volume - 0.1); break;
    case "f": case "F": p.fullscreen(); break;
    case "m": case "M": v.muted = !v.muted; break;
    default: return;
  }
  event.preventDefault();
}

// Document-wide listeners, installed once when the module loads: a key pressed before htmx has
// set the page up still counts.
export function installPlayer() {
  document.addEventListener("keydown", onKey);
  // Leaving the page (boosted navigation, closing the tab, switching apps): save the spot.
  document.addEventListener("htmx:beforeRequest", (e) => {
    if (active && e.detail.boosted) { active.destroy(); active = null; }
  });
  window.addEventListener("pagehide", () => { if (active) active.save(false, true); });
  document.addEventListener("visibilitychange", () => {
    if (active && document.visibilityState === "hidden") active.save(false, true);
  });
}

// Set up the player of a newly loaded page, once.
export function initPlayer(root) {
  const el = root.querySelector ? root.querySelector("[data-player]") : null;
  if (el && !ready.has(el)) {
    ready.add(el);
    if (active) active.destroy();
    active = new Player(el);
    window.lvsPlayer = active; // for the browser tests and the console
  } else if (!document.querySelector("[data-player]") && active) {
    active.destroy();
    active = null;
  }
}
