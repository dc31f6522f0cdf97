// The household UI's small behaviours (issue 16): the header menu, the "?" shortcut overlay,
// "/" to search, keyboard moves through the live search suggestions, arrow buttons on rows of
// cards, and player controls that fade when the mouse rests in full screen.

function typing(target) {
  return target.closest && target.closest("input, textarea, select, [contenteditable='true']");
}

function openShortcuts() {
  const dialog = document.getElementById("shortcuts");
  if (!dialog || dialog.open) return;
  dialog.querySelector("[data-video-keys]").hidden = !document.querySelector("[data-player]");
  dialog.querySelector("[data-picture-keys]").hidden = !document.querySelector("a[data-picture]");
  document.querySelectorAll("details.menu[open]").forEach((d) => { d.open = false; });
  dialog.showModal();
}

function closeMenus(except) {
  document.querySelectorAll("details.menu[open]").forEach((d) => { if (d !== except) d.open = false; });
}

function clearSuggestions() {
  const s = document.getElementById("suggest");
  if (s) s.replaceChildren();
}

function suggestLinks() { return Array.from(document.querySelectorAll("#suggest a")); }

function moveSuggestion(delta) {
  const links = suggestLinks();
  if (!links.length) return false;
  const i = links.findIndex((a) => a.getAttribute("aria-selected") === "true");
  links.forEach((a) => a.removeAttribute("aria-selected"));
  const next = links[(i + delta + links.length + (i < 0 && delta < 0 ? 1 : 0)) % links.length];
  next.setAttribute("aria-selected", "true");
  next.scrollIntoView({ block: "nearest" });
  return true;
}

function onKey(event) {
  const box = event.target.closest && event.target.closest(".quick-search input");
  if (box) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (moveSuggestion(event.key === "ArrowDown" ? 1 : -1)) event.preventDefault();
    } else if (event.key === "Enter") {
      const chosen = document.querySelector("#suggest a[aria-selected='true']");
      if (chosen) { event.preventDefault(); chosen.click(); }
    } else if (event.key === "Escape") {
      clearSuggestions();
    }
    return;
  }
  if (event.key === "Escape") closeMenus(null);
  if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "?") { event.preventDefault(); openShortcuts(); }
  else if (event.key === "/") {
    const input = document.querySelector(".quick-search input");
    if (input) { event.preventDefault(); input.focus(); }
  }
}

// Rows of cards: arrow buttons that page sideways, shown only when there is more to see.
function setUpRow(list) {
  if (list.closest(".row-wrap")) return;
  const wrap = document.createElement("div");
  wrap.className = "row-wrap";
  list.before(wrap);
  wrap.append(list);
  const make = (dir, label) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = `row-arrow ${dir}`;
    b.setAttribute("aria-label", label);
    b.tabIndex = -1; // the cards themselves are reachable by keyboard
    b.innerHTML = `<svg class="i" aria-hidden="true"><use href="#i-${dir === "prev" ? "left" : "right"}"/></svg>`;
    b.addEventListener("click", () => list.scrollBy({ left: (dir === "prev" ? -0.9 : 0.9) * list.clientWidth }));
    wrap.append(b);
    return b;
  };
  const prev = make("prev", "Scroll left");
  const next = make("next", "Scroll right");
  const update = () => {
    prev.disabled = list.scrollLeft <= 2;
    next.disabled = list.scrollLeft + list.clientWidth >= list.scrollWidth - 2;
  };
  list.addEventListener("scroll", update, { passive: true });
  new ResizeObserver(update).observe(list);
  update();
}

// Full screen: the controls float over the video and fade after 2.5 s without a move.
let idleTimer = null;
function wake(player) {
  player.classList.remove("idle");
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => {
    if (document.fullscreenElement === player && player.classList.contains("playing")) player.classList.add("idle");
  }, 2500);
}

export function installUi() {
  document.addEventListener("keydown", onKey);
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-shortcuts-open]")) { openShortcuts(); return; }
    closeMenus(event.target.closest("details.menu"));
    if (!event.target.closest(".quick-search")) {
      clearSuggestions();
    }
  });
  document.addEventListener("htmx:afterSettle", () => {
    const box = document.getElementById("suggest");
    const input = document.querySelector(".quick-search input");
    if (box && input) input.setAttribute("aria-expanded", box.children.length ? "true" : "false");
  });
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.boosted) closeMenus(null);
  });
  for (const type of ["pointermove", "pointerdown", "keydown"]) {
    document.addEventListener(type, () => {
      const fs = document.fullscreenElement;
      if (fs && fs.matches("[data-player]")) wake(fs);
    }, { passive: true });
  }
  document.addEventListener("fullscreenchange", () => {
    const fs = document.fullscreenElement;
    if (fs && fs.matches("[data-player]")) wake(fs);
    document.querySelectorAll("[data-player].idle").forEach((p) => { if (p !== fs) p.classList.remove("idle"); });
  });
}

export function initUi(root) {
  const scope = root.querySelectorAll ? root : document;
  scope.querySelectorAll("ul.cards.row").forEach(setUpRow);
  if (scope.matches && scope.matches("ul.cards.row")) setUpRow(scope);
}
