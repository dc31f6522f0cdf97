// The service worker (issue 19), served from the site root by blueprints/live.py, which writes the
// configuration in place of the placeholder below: the asset version, the shell to keep, the
// offline page. What it keeps, and what never:
// - the static shell (versioned /static/v/<version>/… URLs, app.js's imports included): cache-first, one cache per release;
// - thumbnails that are real (sent `immutable`; a placeholder is not), cache-first, at most
//   THUMBS_MAX of them, the oldest dropped first;
// - never media files, pages (HTML with the person's data), the change feed or any API: they go
//   to the network; a page that cannot be fetched gets the offline page instead.
const CONFIG = self.LVS_CONFIG;
const SHELL = `lvs-shell-${CONFIG.version}`;
const THUMBS = "lvs-thumbs";
const THUMBS_MAX = 500;
const THUMB_PATH = /^\/media\/[0-9a-f]{16}\/thumb$/;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(SHELL).then((cache) => cache.addAll(CONFIG.shell)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("lvs-shell-") && name !== SHELL) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    event.respondWith(navigate(request));
  } else if (url.pathname.startsWith(`${CONFIG.static}v/`)) {
    event.respondWith(shell(request));
  } else if (THUMB_PATH.test(url.pathname)) {
    event.respondWith(thumbnail(request, url));
  }
  // Everything else (media, the feed, APIs, htmx fragments) is the browser's own business.
});

// Pages always come from the server; only when it does not answer, the offline page.
async function navigate(request) {
  try {
    return await fetch(request);
  } catch {
    const cache = await caches.open(SHELL);
    return (await cache.match(CONFIG.offline)) ||
      new Response("The server is not answering — is it on?", {
        status: 503, headers: { "Content-Type": "text/plain; charset=utf-8" },
      });
  }
}

async function shell(request) {
  const cache = await caches.open(SHELL);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) cache.put(request, response.clone());
  return response;
}

// Keyed without the query: live.js asks for a thumbnail again with ?v=… once it is made.
let puts = 0;
async function thumbnail(request, url) {
  const cache = await caches.open(THUMBS);
  const key = url.origin + url.pathname;
  const hit = await cache.match(key);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok && (response.headers.get("Cache-Control") || "").includes("immutable")) {
    await cache.put(key, response.clone());
    if (++puts % 25 === 0 || puts === 1) trim(cache);
  }
  return response;
}

async function trim(cache) {
  const keys = await cache.keys();
  for (let i = 0; i < keys.length - THUMBS_MAX; i++) await cache.delete(keys[i]);
}

// The pages ask how much is kept (bench/ and the tests).
self.addEventListener("message", (event) => {
  if (event.data !== "lvs-cache-size") return;
  event.waitUntil((async () => {
    const out = {};
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      let bytes = 0;
      const keys = await cache.keys();
      for (const key of keys) bytes += (await (await cache.match(key)).arrayBuffer()).byteLength;
      out[name] = { entries: keys.length, bytes };
    }
    event.source.postMessage({ cacheSize: out });
  })());
});
