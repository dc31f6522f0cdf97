// A slideshow in the pictures' lightbox (issue 19): play/stop, the interval, shuffle and loop.
// While it runs it holds a screen wake lock, so a phone or a TV browser does not dim; the lock
// is let go when the show stops, the lightbox closes or the page is hidden (the show pauses
// then, and goes on with a new lock when the page is shown again).
// The controls are added to the lightbox (templates/gallery/folder.html) here, and move through
// the pictures as a person would: the lightbox's next button, or a picture's card for shuffle.

const INTERVALS = [2, 3, 5, 10, 20];
const PREF = "lvs-slideshow";

let show = null; // {dialog, timer, lock, paused}

function prefs() {
  try {
    return { interval: 5, shuffle: false, loop: true, ...JSON.parse(localStorage.getItem(PREF) || "{}") };
  } catch {
    return { interval: 5, shuffle: false, loop: true };
  }
}

function savePrefs(dialog) {
  const bar = dialog.querySelector(".slideshow");
  localStorage.setItem(PREF, JSON.stringify({
    interval: Number(bar.querySelector("select").value),
    shuffle: bar.querySelector("[data-shuffle]").checked,
    loop: bar.querySelector("[data-loop]").checked,
  }));
}

async function lock() {
  if (!show || show.lock || !("wakeLock" in navigator) || document.visibilityState !== "visible") return;
  try {
    const sentinel = await navigator.wakeLock.request("screen");
    if (!show || show.paused) { sentinel.release(); return; }
    show.lock = sentinel;
    sentinel.addEventListener("release", () => { if (show && show.lock === sentinel) show.lock = null; });
  } catch {
    // Refused (battery saver, no permission): the show runs, the screen may dim.
  }
}

function unlock() {
  if (show && show.lock) {
    const sentinel = show.lock;
    show.lock = null;
    sentinel.release().catch(() => {});
  }
}

function pictures() {
  return Array.from(document.querySelectorAll("#cards a[data-picture]"));
}

function advance() {
  if (!show) return;
  const { dialog } = show;
  const bar = dialog.querySelector(".slideshow");
  const list = pictures();
  const src = dialog.querySelector("img").getAttribute("src");
  const here = list.findIndex((a) => a.dataset.picture === src);
  let next = null;
  if (bar.querySelector("[data-shuffle]").checked && list.length > 1) {
    let i = here;
    while (i === here) i = Math.floor(Math.random() * list.length);
    next = list[i];
  } else if (here + 1 < list.length) {
    next = list[here + 1];
  } else if (bar.querySelector("[data-loop]").checked) {
    next = list[0];
  }
  if (!next) { stop(); return; }
  if (next === list[here + 1]) dialog.querySelector(".lb-next").click();
  else next.click(); // the lightbox opens a card's picture on its click (lightbox.js)
  arm();
}

function arm() {
  clearTimeout(show.timer);
  const seconds = Number(show.dialog.querySelector(".slideshow select").value) || 5;
  show.timer = setTimeout(advance, seconds * 1000);
}

function start(dialog) {
  if (show) return;
  show = { dialog, timer: null, lock: null, paused: false };
  dialog.classList.add("slideshow-on");
  const button = dialog.querySelector("[data-slideshow]");
  button.setAttribute("aria-pressed", "true");
  button.textContent = "Stop slideshow";
  arm();
  lock();
}

function stop() {
  if (!show) return;
  const { dialog } = show;
  clearTimeout(show.timer);
  unlock();
  show = null;
  dialog.classList.remove("slideshow-on");
  const button = dialog.querySelector("[data-slideshow]");
  button.setAttribute("aria-pressed", "false");
  button.textContent = "Slideshow";
}

function onVisibility() {
  if (!show) return;
  if (document.visibilityState === "hidden") {
    show.paused = true;
    clearTimeout(show.timer);
    unlock();
  } else if (show.paused) {
    show.paused = false;
    arm();
    lock();
  }
}

function controls(dialog) {
  const p = prefs();
  const bar = document.createElement("div");
  bar.className = "slideshow";
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Slideshow");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button";
  button.dataset.slideshow = "";
  button.setAttribute("aria-pressed", "false");
  button.textContent = "Slideshow";
  const every = document.createElement("label");
  every.append("Every ");
  const select = document.createElement("select");
  for (const s of INTERVALS) {
    const option = new Option(`${s} s`, String(s), false, s === p.interval);
    select.append(option);
  }
  every.append(select);
  const check = (name, label, on) => {
    const l = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.dataset[name] = "";
    box.checked = on;
    l.append(box, ` ${label}`);
    return l;
  };
  bar.append(button, every, check("shuffle", "Shuffle", p.shuffle), check("loop", "Loop", p.loop));
  button.addEventListener("click", () => (show ? stop() : start(dialog)));
  bar.addEventListener("change", () => { savePrefs(dialog); if (show) arm(); });
  dialog.append(bar);
}

const ready = new WeakSet();

export function initSlideshow() {
  const dialog = document.getElementById("lightbox");
  if (!dialog || ready.has(dialog)) return;
  ready.add(dialog);
  controls(dialog);
  dialog.addEventListener("close", stop);
  // A person moving by hand restarts the wait, so a picture they chose gets its full time.
  dialog.addEventListener("click", (e) => {
    if (show && e.isTrusted && e.target.closest(".lb-prev, .lb-next")) arm();
  });
}

export function installSlideshow() {
  document.addEventListener("visibilitychange", onVisibility);
  document.addEventListener("htmx:beforeRequest", (e) => { if (e.detail.boosted) stop(); });
}

// For the browser tests and the console.
window.lvsSlideshow = {
  state: () => ({ running: !!show, paused: !!(show && show.paused), locked: !!(show && show.lock) }),
};
