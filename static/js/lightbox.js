// Lightbox for pictures: a card with data-picture opens the full picture in a <dialog>, with
// previous/next (buttons, arrow keys, swipe) through the pictures loaded in the listing.
// Without JavaScript the card is a plain link to the picture's page.

let current = null; // the card link on show

function pictures() {
  return Array.from(document.querySelectorAll("#cards a[data-picture]"));
}

function show(dialog, link) {
  current = link;
  const img = dialog.querySelector("img");
  const title = link.querySelector(".title");
  img.src = link.dataset.picture;
  img.alt = title ? title.textContent : "";
  dialog.querySelector("figcaption").textContent = img.alt;
  dialog.querySelector(".lb-open").href = link.href;
  const list = pictures();
  const i = list.indexOf(link);
  dialog.querySelector(".lb-prev").disabled = i <= 0;
  dialog.querySelector(".lb-next").disabled = i < 0 || i >= list.length - 1;
  if (!dialog.open) dialog.showModal();
}

function step(dialog, delta) {
  const list = pictures();
  const i = list.indexOf(current);
  const next = list[i + delta];
  if (next) show(dialog, next);
}

function close(dialog) {
  dialog.close();
}

function setUp(dialog) {
  let swiped = false; // a swipe ends with a click; it must not close the dialog
  dialog.querySelector(".lb-prev").addEventListener("click", () => step(dialog, -1));
  dialog.querySelector(".lb-next").addEventListener("click", () => step(dialog, 1));
  dialog.querySelector(".lb-close").addEventListener("click", () => close(dialog));
  dialog.addEventListener("close", () => {
    if (current && document.contains(current)) current.focus();
    dialog.querySelector("img").removeAttribute("src");
  });
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight") { event.preventDefault(); step(dialog, 1); }
    else if (event.key === "ArrowLeft") { event.preventDefault(); step(dialog, -1); }
  });
  // A click on the dark backdrop (the dialog itself, not its content) closes it.
  dialog.addEventListener("click", (event) => {
    if (swiped) { swiped = false; return; }
    if (event.target === dialog || event.target.tagName === "FIGURE") close(dialog);
  });
  let startX = null;
  let startY = null;
  dialog.addEventListener("pointerdown", (event) => { startX = event.clientX; startY = event.clientY; });
  dialog.addEventListener("pointerup", (event) => {
    if (startX === null) return;
    const dx = event.clientX - startX;
    const dy = event.clientY - startY;
    startX = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > 1.5 * Math.abs(dy)) {
      swiped = true;
      step(dialog, dx < 0 ? 1 : -1);
    }
  });
}

const ready = new WeakSet();

// Capture phase, so the picture opens here before hx-boost turns the click into a navigation.
export function installLightbox() {
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-picture]");
    const box = document.getElementById("lightbox");
    if (!link || !box || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    if (document.body.classList.contains("selecting")) return; // select mode: a click selects only
    event.preventDefault();
    event.stopPropagation();
    show(box, link);
  }, true);
}

// Wire up the dialog of a newly loaded page, once.
export function initLightbox() {
  const dialog = document.getElementById("lightbox");
  if (dialog && !ready.has(dialog)) {
    ready.add(dialog);
    setUp(dialog);
  }
}
