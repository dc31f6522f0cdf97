// Lock-screen, headset-button and Bluetooth controls for whatever plays (issue 19): the Media
// Session's metadata (title, show and season, the poster) and position, and its play/pause,
// seek back/forward and previous/next (the page's up next, or the playlist's) handlers. And
// picture-in-picture from the player where the browser has it: the video keeps playing, so
// the player's progress reports go on.
//
// attachMediaSession(video, meta, {prev, next}) is for any player; the watch page's is attached
// from #media-meta (templates/live/media_meta.html). The VR player calls it for flat playback.

const SEEK_STEP_S = 10;
const AUTOPLAY_KEY = "lvs-autoplay-next"; // static/js/player.js starts the next page's video
const handlers = {}; // what is set now, by action: for the browser tests and the console
let attached = null; // {video, detach}

function setHandler(action, fn) {
  handlers[action] = fn;
  try {
    navigator.mediaSession.setActionHandler(action, fn);
  } catch {
    // An action this browser does not know (e.g. "seekto" on an old one): it just is not offered.
  }
}

function follow(id) {
  const link = document.getElementById(id);
  if (!link) return;
  if (window.lvsPlayer && document.contains(window.lvsPlayer.root)) window.lvsPlayer.go(id, true);
  else { sessionStorage.setItem(AUTOPLAY_KEY, "1"); link.click(); }
}

export function attachMediaSession(video, meta, moves = {}) {
  if (!("mediaSession" in navigator)) return () => {};
  if (attached) attached.detach();
  const session = navigator.mediaSession;
  const artwork = meta.artwork
    ? [{ src: new URL(meta.artwork, location.href).href, type: "image/jpeg" }]
    : [];
  const metadata = () => {
    session.metadata = new MediaMetadata({
      title: meta.title || document.title,
      artist: meta.show || "",
      album: meta.season || "",
      artwork,
    });
  };
  let lastPosition = 0;
  const position = (force = false) => {
    const d = video.duration;
    const t = video.currentTime;
    if (!Number.isFinite(d) || d <= 0 || !Number.isFinite(t)) return;
    const now = performance.now();
    if (!force && now - lastPosition < 1000) return;
    lastPosition = now;
    try {
      session.setPositionState({ duration: d, playbackRate: video.playbackRate || 1, position: Math.min(t, d) });
    } catch {
      // A position past a duration that just changed: the next update gets it right.
    }
  };
  const onPlay = () => { metadata(); session.playbackState = "playing"; position(true); };
  const onPause = () => { session.playbackState = "paused"; position(true); };
  const onTime = () => position();
  const onJump = () => position(true);
  const events = { play: onPlay, pause: onPause, timeupdate: onTime, seeked: onJump,
    ratechange: onJump, loadedmetadata: onJump, durationchange: onJump };
  for (const [name, fn] of Object.entries(events)) video.addEventListener(name, fn);
  metadata();
  setHandler("play", () => { const p = video.play(); if (p) p.catch(() => {}); });
  setHandler("pause", () => video.pause());
  setHandler("stop", () => video.pause());
  setHandler("seekbackward", (d) => { video.currentTime = Math.max(0, video.currentTime - (d?.seekOffset || SEEK_STEP_S)); });
  setHandler("seekforward", (d) => {
    video.currentTime = Math.min(video.duration || Infinity, video.currentTime + (d?.seekOffset || SEEK_STEP_S));
  });
  setHandler("seekto", (d) => {
    if (d.fastSeek && video.fastSeek) video.fastSeek(d.seekTime);
    else video.currentTime = d.seekTime;
  });
  setHandler("previoustrack", moves.prev || null);
  setHandler("nexttrack", moves.next || null);
  const detach = () => {
    for (const [name, fn] of Object.entries(events)) video.removeEventListener(name, fn);
    for (const action of Object.keys(handlers)) setHandler(action, null);
    session.metadata = null;
    session.playbackState = "none";
    attached = null;
  };
  attached = { video, detach };
  return detach;
}

// -- picture-in-picture --------------------------------------------------------------------

function addPipButton(player, video) {
  if (!document.pictureInPictureEnabled || video.disablePictureInPicture) return;
  const bar = player.querySelector(".controls-bar");
  if (!bar || bar.querySelector('[data-pip]')) return;
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.pip = "";
  button.className = "pip";
  button.setAttribute("aria-label", "Picture in picture");
  button.title = "Picture in picture";
  // An icon of the sprite (issue 16): "⧉" is a glyph TV and headset fonts lack.
  button.innerHTML = '<svg class="i" aria-hidden="true"><use href="#i-pip"/></svg>';
  button.addEventListener("click", () => {
    if (document.pictureInPictureElement === video) document.exitPictureInPicture().catch(() => {});
    else video.requestPictureInPicture().catch(() => {});
  });
  video.addEventListener("enterpictureinpicture", () => button.setAttribute("aria-pressed", "true"));
  video.addEventListener("leavepictureinpicture", () => button.setAttribute("aria-pressed", "false"));
  const full = bar.querySelector('[data-action="fullscreen"]');
  if (full) full.before(button);
  else bar.append(button);
}

// -- the watch page ------------------------------------------------------------------------

export function initMediaSession() {
  const player = document.querySelector("[data-player]");
  const video = player && player.querySelector("video");
  const meta = document.getElementById("media-meta");
  if (!video || !meta) {
    if (attached && !document.contains(attached.video)) attached.detach();
    return;
  }
  if (attached && attached.video === video) return;
  attachMediaSession(video, meta.dataset, {
    prev: document.getElementById("prev-link") ? () => follow("prev-link") : null,
    next: document.getElementById("next-link") ? () => follow("next-link") : null,
  });
  addPipButton(player, video);
}

window.lvsMediaSession = { handlers, attach: attachMediaSession };
