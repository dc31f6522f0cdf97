// The watch page's VR entry (issue 14): for a VR video, the look-around view instead of the raw
// frame (with a "Raw frame" toggle), and "Enter VR" where the browser has an immersive-vr
// headset. On plain HTTP (not a secure context) WebXR does not exist, and the page says so.
// three.js (2 MB) is loaded only on a VR video's page.

let current = null; // { el, look, xr }

function projectionOf(el) {
  const d = el.dataset;
  return { type: d.type, stereo: d.stereo, eye_swap: d.eyeSwap === "1", lens: d.lens || null, fov: Number(d.fov) || null };
}

async function immersiveSupported() {
  if (!window.isSecureContext || !navigator.xr) return false;
  try { return await navigator.xr.isSessionSupported("immersive-vr"); } catch { return false; }
}

async function setup(el) {
  const video = document.querySelector("[data-player] video");
  const stage = document.querySelector("[data-player] .stage");
  if (!video || !stage) return;
  const p = projectionOf(el);
  const state = (current = { el, look: null, xr: null, projection: p });
  window.lvsVr = state; // for the browser tests and the console
  el.hidden = false;
  const [{ LookView }, { XRPlayer }] = await Promise.all([import("./look.js"), import("./xr.js")]);
  if (current !== state) return; // the page changed while three.js loaded
  state.look = new LookView(stage, video, p);
  const raw = el.querySelector("[data-vr-raw]");
  raw.addEventListener("click", () => {
    const on = raw.getAttribute("aria-pressed") !== "true";
    raw.setAttribute("aria-pressed", on ? "true" : "false");
    state.look.setRaw(on);
  });
  const enter = el.querySelector("[data-vr-enter]");
  if (!window.isSecureContext) {
    const link = el.querySelector("[data-vr-https-link]");
    link.href = location.href.replace(/^http:/, "https:");
    el.querySelector("[data-vr-https]").hidden = false;
  } else if (await immersiveSupported()) {
    enter.hidden = false;
    enter.addEventListener("click", async () => {
      if (state.xr) return;
      enter.disabled = true;
      // No "next video" countdown in the headset: following the link would end the session.
      const autoplay = document.querySelector("[data-autoplay]");
      const wasOn = autoplay ? autoplay.checked : false;
      if (autoplay) autoplay.checked = false;
      // The headset wants the sharpest picture this machine can send in real time: the playback
      // module's "max" quality (direct play stays direct when the headset can decode the file).
      // Not awaited: the session must start within this click's user activation.
      const playback = window.lvsPlayer && window.lvsPlayer.playback;
      if (playback && typeof playback.reload === "function" && !state.askedMax) {
        state.askedMax = true;
        playback.reload({ q: "max" }).catch((err) => console.warn("quality:", err));
      }
      try {
        state.xr = await new XRPlayer({
          video,
          projection: p,
          sprites: el.dataset.sprites,
          onEnd: () => {
            state.xr = null;
            enter.disabled = false;
            if (autoplay) autoplay.checked = wasOn;
            state.look.draw();
          },
        }).start();
      } catch (err) {
        enter.disabled = false;
        if (autoplay) autoplay.checked = wasOn;
        state.error = String(err && err.message ? err.message : err);
        console.warn("Could not enter VR:", state.error);
      }
    });
  } else {
    el.querySelector("[data-vr-none]").hidden = false;
  }
  state.ready = true;
}

// Set up the VR entry of a newly loaded watch page, once; tear down the last page's.
export function initVr() {
  const el = document.querySelector("[data-vr-entry]");
  if (current && current.el !== el) {
    if (current.xr) current.xr.session.end();
    if (current.look) current.look.destroy();
    current = null;
    window.lvsVr = null;
  }
  if (el && !current) setup(el).catch((err) => console.warn("VR view unavailable:", err));
}
