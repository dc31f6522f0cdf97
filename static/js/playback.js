// How the watch page's video is played: the original file, or HLS remuxed/transcoded by the
// server (issue 12). The page asks this browser about a fixed list of codec strings, sends the
// names that passed to /media/<hash>/play.json, and plays what the server decides, showing why.
// A direct play that fails (a MediaError, or a picture that never comes: videoWidth stays 0)
// switches by itself to HLS from the same spot, and the browser remembers the lesson.
//
// Hooks for the other menus (subtitles, audio, VR): `player.playback.reload({audio, burn, q})`
// plays another rendition from the current position; every decision is dispatched on the
// player root as the `lvs:decision` event (detail: the server's JSON, with the audio and
// subtitle tracks).

// hls.js (600 kB) is loaded only when a video needs it, not with every page.
let Hls = null;
async function loadHls() {
  if (!Hls) Hls = (await import("../vendor/hls.js/hls.min.mjs")).default;
  return Hls;
}

const FAILED_KEY = "lvs-direct-failed"; // signatures of files whose original failed here
const BUSY_RETRY_S = 10;
const PLAYLIST_POLICY = {
  maxTimeToFirstByteMs: 30000,
  maxLoadTimeMs: 60000,
  timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
  errorRetry: { maxNumRetry: 2, retryDelayMs: 1000, maxRetryDelayMs: 8000 },
};
const HLS_TYPE = "application/vnd.apple.mpegurl";
const NO_PICTURE_MS = 2500; // playing this long with videoWidth 0: the browser shows no picture

// The fixed list the server knows (services/playback/decision.py CAPABILITIES).
const CONTAINERS = {
  mp4: ["video/mp4"],
  webm: ["video/webm"],
  mkv: ["video/x-matroska", "video/mkv"],
  mov: ["video/quicktime"],
};
const CODECS = {
  h264_baseline: ['video/mp4; codecs="avc1.42E01E"'],
  h264_main: ['video/mp4; codecs="avc1.4D401F"'],
  h264_high: ['video/mp4; codecs="avc1.640028"'],
  h264_high_l51: ['video/mp4; codecs="avc1.640033"'],
  h264_high10: ['video/mp4; codecs="avc1.6E0028"'],
  hevc: ['video/mp4; codecs="hvc1.1.6.L120.90"', 'video/mp4; codecs="hev1.1.6.L120.90"'],
  hevc_main10: ['video/mp4; codecs="hvc1.2.4.L120.90"'],
  vp8: ['video/webm; codecs="vp8"'],
  vp9: ['video/webm; codecs="vp9"', 'video/mp4; codecs="vp09.00.10.08"'],
  vp9_10: ['video/mp4; codecs="vp09.02.10.10"'],
  av1: ['video/mp4; codecs="av01.0.08M.08"'],
  av1_10: ['video/mp4; codecs="av01.0.08M.10"'],
  aac: ['audio/mp4; codecs="mp4a.40.2"'],
  mp3: ["audio/mpeg", 'audio/mp4; codecs="mp4a.6B"'],
  opus: ['audio/webm; codecs="opus"', 'audio/mp4; codecs="opus"'],
  flac: ['audio/flac', 'audio/mp4; codecs="flac"'],
  vorbis: ['audio/webm; codecs="vorbis"'],
  ac3: ['audio/mp4; codecs="ac-3"'],
  eac3: ['audio/mp4; codecs="ec-3"'],
};
const LABELS = { auto: "Auto", original: "Original", max: "Best", 1080: "1080p", 720: "720p", 480: "480p" };

let capsCache = null;

// Return the capability names this browser passes, comma-separated (asked once per document).
export function capabilities() {
  if (capsCache !== null) return capsCache;
  const v = document.createElement("video");
  const MS = window.ManagedMediaSource || window.MediaSource;
  const can = (type) => v.canPlayType(type) !== "" || !!(MS && MS.isTypeSupported && MS.isTypeSupported(type));
  const names = [];
  if (MS && MS.isTypeSupported && MS.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"')) {
    names.push("mse"); // what hls.js needs (its isSupported() asks the same)
  }
  if (v.canPlayType(HLS_TYPE)) names.push("hls");
  for (const [name, types] of Object.entries(CONTAINERS)) {
    if (types.some((t) => v.canPlayType(t) !== "")) names.push(name);
  }
  for (const [name, types] of Object.entries(CODECS)) {
    if (types.some(can)) names.push(name);
  }
  capsCache = names.join(",");
  return capsCache;
}

// Return how this browser plays HLS: "hls.js" wherever MediaSource (or Safari's
// ManagedMediaSource) takes H.264 + AAC, which is what hls.js needs — one player, the same
// controls, previews and error handling everywhere; else "native" where the video element
// plays HLS itself (Safari on older iPhones); else null.
export function hlsEngine(video) {
  if (capabilities().split(",").includes("mse")) return "hls.js";
  if (video.canPlayType(HLS_TYPE)) return "native";
  return null;
}

function failedSignatures() {
  try {
    return JSON.parse(localStorage.getItem(FAILED_KEY) || "[]");
  } catch {
    return [];
  }
}

function rememberFailure(signature) {
  const known = failedSignatures();
  if (!known.includes(signature)) {
    known.push(signature);
    localStorage.setItem(FAILED_KEY, JSON.stringify(known.slice(-50)));
  }
}

export class Playback {
  constructor(player) {
    this.player = player;
    this.root = player.root;
    this.video = player.video;
    this.url = this.root.dataset.play;
    this.note = this.root.querySelector(".playback-note");
    this.menu = this.root.querySelector("select.quality");
    this.hls = null;
    this.decision = null;
    this.choice = {}; // q, audio, burn as last asked
    this.started = false;
    this.engine = null; // how HLS plays here: "hls.js" or "native" (hlsEngine)
    this.watchdog = null;
    this.busyTimer = null;
    this.onError = () => this.directFailed("error");
    this.onPlaying = () => this.checkPicture();
    this.onPlay = () => this.startLoading();
    this.video.addEventListener("error", this.onError);
    this.video.addEventListener("playing", this.onPlaying);
    this.video.addEventListener("play", this.onPlay);
    if (this.menu) this.menu.addEventListener("change", () => this.reload({ q: this.menu.value }));
    if (this.url) this.reload({}, true);
  }

  // Ask the server again with these choices (merged with the last ones) and play from here.
  async reload(choice = {}, first = false) {
    this.choice = { ...this.choice, ...choice };
    const position = first ? null : this.video.currentTime;
    const wasPlaying = !this.video.paused;
    const params = new URLSearchParams({ caps: capabilities() });
    for (const [k, v] of Object.entries(this.choice)) if (v !== undefined && v !== null && v !== "") params.set(k, v);
    let decision;
    try {
      const response = await fetch(`${this.url}?${params}`, { credentials: "same-origin" });
      if (!response.ok) throw new Error(`${response.status}`);
      decision = await response.json();
    } catch {
      this.say("The server could not say how to play this video; playing the original file.");
      return;
    }
    if (decision.method === "direct" && failedSignatures().includes(decision.signature) && !this.choice.nodirect) {
      return this.reload({ nodirect: "1" }, first);
    }
    await this.apply(decision, position, wasPlaying);
  }

  async apply(decision, position, wasPlaying) {
    this.decision = decision;
    this.root.classList.remove("unplayable");
    this.root.classList.add(`playback-${decision.method}`);
    const notice = this.root.querySelector(".stage > .notice"); // "may not play" (no-JS pages)
    if (notice) notice.remove();
    this.buildMenu(decision);
    if (decision.method === "direct") {
      this.say("");
      this.detach();
      if (!this.video.getAttribute("src") || !this.video.src.endsWith(decision.url)) {
        this.video.src = decision.url;
      }
      this.video.preload = "metadata";
      if (position !== null) this.resumeAt(position, wasPlaying);
    } else {
      this.say(decision.words);
      this.engine = hlsEngine(this.video);
      if (this.engine === "hls.js") await loadHls();
      this.attach(decision.url, position ?? this.player.resume ?? 0, wasPlaying);
    }
    this.root.dispatchEvent(new CustomEvent("lvs:decision", { detail: decision, bubbles: true }));
  }

  buildMenu(decision) {
    if (!this.menu) return;
    const options = ["auto", ...decision.qualities];
    this.menu.replaceChildren(...options.map((q) => new Option(LABELS[q] || `${q}p`, q)));
    this.menu.value = options.includes(decision.quality) ? decision.quality : "auto";
    this.menu.hidden = options.length < 2;
  }

  attach(url, position, wasPlaying) {
    this.detach();
    const v = this.video;
    v.removeAttribute("src");
    this.started = false;
    if (this.engine === "hls.js" && Hls.isSupported()) {
      const hls = new Hls({
        enableWorker: false, // the page's CSP allows no blob: workers
        autoStartLoad: false, // no encoder runs for a page that is only looked at
        startPosition: position || 0,
        maxBufferLength: 30,
        backBufferLength: 60,
        fragLoadPolicy: {
          default: {
            maxTimeToFirstByteMs: 30000,
            maxLoadTimeMs: 120000,
            timeoutRetry: { maxNumRetry: 4, retryDelayMs: 0, maxRetryDelayMs: 0 },
            errorRetry: { maxNumRetry: 6, retryDelayMs: 1000, maxRetryDelayMs: 8000 },
          },
        },
        // A first play may make the server measure this machine's encoder speed (q=max) or
        // read the file's keyframes: on a busy server a playlist can take longer than hls.js's
        // 10 s default before its first byte.
        manifestLoadPolicy: { default: PLAYLIST_POLICY },
        playlistLoadPolicy: { default: PLAYLIST_POLICY },
      });
      this.hls = hls;
      this.hlsUrl = url;
      hls.on(Hls.Events.ERROR, (_event, data) => this.hlsError(data));
      hls.loadSource(url);
      hls.attachMedia(v);
      this.pendingStart = position || 0;
      if (wasPlaying || position) this.startLoading(position || 0, wasPlaying);
    } else if (this.engine === "native") {
      // The browser's own HLS (Safari on an iPhone without MediaSource): the master playlist
      // as the src. Nothing is fetched for a page only looked at: its first segment would
      // start an encoder, so the video loads when played (or resumed at a position).
      v.preload = wasPlaying || position ? "auto" : "none";
      v.src = url;
      this.started = true;
      if (position) this.resumeAt(position, wasPlaying);
      else if (wasPlaying) this.player.play();
    } else {
      this.say("This browser can play neither the original nor HLS: download the file instead.");
    }
  }

  startLoading(position = null, play = false) {
    if (!this.hls || this.started) return;
    this.started = true;
    const at = position ?? (this.video.currentTime || this.pendingStart || 0);
    this.hls.startLoad(at);
    if (play) this.playWhenReady();
  }

  // play() as soon as the stream is attached; a play() cut short by the source changing
  // under it (an AbortError) is tried again once the new source can play.
  playWhenReady() {
    const v = this.video;
    const attempt = () => {
      const p = v.play();
      if (p) p.catch((error) => {
        if (error && error.name === "AbortError") v.addEventListener("canplay", () => this.player.play(), { once: true });
      });
    };
    if (this.hls && !this.hls.media) this.hls.once(Hls.Events.MEDIA_ATTACHED, attempt);
    else attempt();
  }

  resumeAt(position, play) {
    const go = () => {
      this.video.currentTime = position;
      if (play) this.player.play();
    };
    if (this.video.readyState >= 1) go();
    else this.video.addEventListener("loadedmetadata", go, { once: true });
  }

  hlsError(data) {
    if (!data.fatal) return;
    const status = data.response && data.response.code;
    if (status === 503) {
      this.say(`The server is busy converting other videos; trying again in ${BUSY_RETRY_S} s.`);
      clearTimeout(this.busyTimer);
      this.busyTimer = setTimeout(() => {
        if (this.hls) { this.say(this.decision ? this.decision.words : ""); this.hls.startLoad(this.video.currentTime); }
      }, BUSY_RETRY_S * 1000);
    } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      this.hls.recoverMediaError();
    } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
      this.say("The video stopped loading; trying again.");
      const hls = this.hls;
      setTimeout(() => {
        if (!hls || hls !== this.hls) return;
        // Without its master playlist hls.js has nothing to start: ask for it again first.
        if (/^manifest/i.test(data.details || "")) hls.loadSource(this.hlsUrl);
        hls.once(Hls.Events.FRAG_LOADED, () => this.say(this.decision ? this.decision.words : ""));
        hls.startLoad(this.video.currentTime || this.pendingStart || 0);
      }, 2000);
    } else {
      this.say("This video cannot be played here; download it instead.");
    }
  }

  // A direct play that shows no picture, or fails: switch to HLS from the same spot.
  checkPicture() {
    clearTimeout(this.watchdog);
    if (!this.decision || this.decision.method !== "direct") return;
    this.watchdog = setTimeout(() => {
      if (!this.video.paused && this.video.videoWidth === 0 && this.decision.has_video) this.directFailed("no picture");
    }, NO_PICTURE_MS);
  }

  directFailed(why) {
    if (!this.decision || this.decision.method !== "direct" || this.hls) return;
    rememberFailure(this.decision.signature);
    const at = this.video.currentTime || 0;
    this.video.pause();
    this.reload({ nodirect: "1" }).then(() => {
      if (this.decision && this.decision.method !== "direct") {
        this.say(`The original did not play here (${why}); switched: ${this.decision.words}`);
        this.startLoading(at, true);
      }
    });
  }

  say(text) {
    if (!this.note) return;
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  // Leave the HLS session: the server stops its encoder now rather than when it idles out.
  detach() {
    if (!this.hls) return;
    const level = this.hls.levels && this.hls.levels[0];
    const url = level && (level.uri || [].concat(level.url)[0]);
    if (typeof url === "string") {
      const stop = new URL("stop", new URL(url.split("?")[0], location.href));
      const body = new URLSearchParams({
        // In the body, not a header: sendBeacon cannot set headers (blueprints/access.py).
        csrf_token: document.querySelector('meta[name="csrf-token"]')?.content ?? "",
      });
      if (navigator.sendBeacon) navigator.sendBeacon(stop.href, body);
    }
    this.hls.destroy();
    this.hls = null;
  }

  destroy() {
    clearTimeout(this.watchdog);
    clearTimeout(this.busyTimer);
    this.video.removeEventListener("error", this.onError);
    this.video.removeEventListener("playing", this.onPlaying);
    this.video.removeEventListener("play", this.onPlay);
    this.detach();
  }
}
