// Preview clips on cards: a video card whose link carries data-clip plays that short silent clip
// over its poster while the pointer rests on it, while it has keyboard focus, or after a press
// and hold on a touch screen. Nothing is fetched before: the <video> is made only on intent
// (the pointer resting HOVER_MS, not sweeping across a grid), one plays at a time, and it is
// taken down (its download stopped) when the pointer or focus leaves. Not with Save-Data; with
// reduced motion only on a press and hold. data-clip-eyes (sbs, tb) shows one eye of a VR clip.

const HOVER_MS = 250;
const HOLD_MS = 450;
const MOVE_PX = 10; // a finger that moves further is scrolling, not holding

let playing = null; // { link, video, thumb }
let timer = 0;
let held = null; // the link a press and hold started: its click must not navigate
let press = null; // { x, y } where a touch went down

function calm() {
  return window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

function saving() {
  return Boolean(navigator.connection && navigator.connection.saveData);
}

function clipLink(target) {
  const link = target instanceof Element ? target.closest("a[data-clip]") : null;
  return link && link.querySelector(".thumb") ? link : null;
}

function start(link) {
  if (playing && playing.link === link) return;
  stop();
  if (!link.isConnected || !link.dataset.clip) return;
  const thumb = link.querySelector(".thumb");
  const video = document.createElement("video");
  video.className = "card-clip";
  video.dataset.eyes = link.dataset.clipEyes || "flat";
  video.muted = true;
  video.defaultMuted = true;
  video.loop = true;
  video.playsInline = true;
  video.disablePictureInPicture = true;
  video.preload = "auto";
  video.setAttribute("aria-hidden", "true");
  video.tabIndex = -1;
  video.addEventListener("playing", () => thumb.classList.add("clip-playing"));
  video.addEventListener("error", () => {
    // Gone from the cache (or not made after all): this card keeps its poster from now on.
    delete link.dataset.clip;
    stop();
  });
  video.src = link.dataset.clip;
  const poster = thumb.querySelector("img");
  thumb.insertBefore(video, poster ? poster.nextSibling : thumb.firstChild);
  playing = { link, video, thumb };
  const attempt = video.play();
  if (attempt) attempt.catch(() => {}); // interrupted by stop(), or autoplay refused: the poster stays
}

function stop() {
  clearTimeout(timer);
  timer = 0;
  if (!playing) return;
  const { video, thumb } = playing;
  playing = null;
  thumb.classList.remove("clip-playing");
  video.pause();
  video.removeAttribute("src");
  video.load(); // ends the download
  video.remove();
}

function later(link, ms) {
  clearTimeout(timer);
  timer = setTimeout(() => start(link), ms);
}

export function installCardClips() {
  document.addEventListener("pointerover", (e) => {
    if (e.pointerType === "touch") return;
    const link = clipLink(e.target);
    if (!link || (playing && playing.link === link) || calm() || saving()) return;
    later(link, HOVER_MS);
  });
  document.addEventListener("pointerout", (e) => {
    if (e.pointerType === "touch") return;
    const link = clipLink(e.target);
    if (!link || link.contains(e.relatedTarget)) return;
    if (playing && playing.link === link) stop();
    else clearTimeout(timer);
  });
  document.addEventListener("focusin", (e) => {
    const link = clipLink(e.target);
    if (link && link === e.target && !calm() && !saving()) later(link, HOVER_MS);
  });
  document.addEventListener("focusout", (e) => {
    const link = clipLink(e.target);
    if (link && !link.contains(e.relatedTarget) && (!playing || playing.link === link)) stop();
  });
  // Touch: a press and hold plays it; the click that ends the hold does not open the video, and
  // the link's own menu does not open over it. Touching anything else stops it.
  document.addEventListener("pointerdown", (e) => {
    if (e.pointerType !== "touch") return;
    const link = clipLink(e.target);
    if (playing && playing.link !== link) stop();
    held = null;
    if (!link || saving()) return;
    press = { x: e.clientX, y: e.clientY };
    clearTimeout(timer);
    timer = setTimeout(() => {
      held = link;
      start(link);
    }, HOLD_MS);
  });
  document.addEventListener("pointermove", (e) => {
    if (e.pointerType !== "touch" || !press || held) return;
    if (Math.hypot(e.clientX - press.x, e.clientY - press.y) > MOVE_PX) clearTimeout(timer);
  });
  for (const type of ["pointerup", "pointercancel"]) {
    document.addEventListener(type, (e) => {
      if (e.pointerType !== "touch") return;
      press = null;
      if (!held) clearTimeout(timer);
    });
  }
  document.addEventListener(
    "click",
    (e) => {
      if (held && clipLink(e.target) === held) {
        e.preventDefault();
        e.stopPropagation();
      }
      held = null;
    },
    true,
  );
  document.addEventListener("contextmenu", (e) => {
    if (held && clipLink(e.target) === held) e.preventDefault();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) stop();
  });
  // A region swapped by htmx (a live update, the next page of a grid) may take the card with it.
  document.addEventListener("htmx:afterSwap", () => {
    if (playing && !playing.link.isConnected) stop();
  });
}
