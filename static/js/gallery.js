// Gallery: arrow-key navigation between cards, and tidy filter URLs.

function cardLinks(list) {
  return Array.from(list.querySelectorAll(":scope > li.card > a"));
}

// Move focus to the card visually next in the arrow's direction: same column one row up or
// down, or the neighbour in reading order. Works for the grid, the shelves and the list.
function onKey(event) {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const link = event.target.closest("li.card > a");
  if (!link) return;
  const list = link.closest("ul.cards");
  const links = cardLinks(list);
  const i = links.indexOf(link);
  let j = -1;
  if (event.key === "ArrowRight") j = i + 1;
  else if (event.key === "ArrowLeft") j = i - 1;
  else if (event.key === "Home") j = 0;
  else if (event.key === "End") j = links.length - 1;
  else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    const here = link.getBoundingClientRect();
    const down = event.key === "ArrowDown";
    let best = Infinity;
    links.forEach((other, k) => {
      const r = other.getBoundingClientRect();
      const dy = down ? r.top - here.bottom : here.top - r.bottom;
      if (dy < -2) return;
      const score = dy * 4 + Math.abs(r.left - here.left);
      if (k !== i && score < best) { best = score; j = k; }
    });
  } else return;
  if (j < 0 || j >= links.length) return;
  event.preventDefault();
  links[j].focus();
  links[j].scrollIntoView({ block: "nearest", inline: "nearest" });
}

// Document-wide listeners, installed once when the module loads.
export function installGallery() {
  document.addEventListener("keydown", onKey);
  // Leave empty filters and the old order out of the URL: changing the sort picks that
  // sort's natural order (newest, longest, largest first; names A to Z).
  document.addEventListener("htmx:configRequest", (event) => {
    const form = event.detail.elt;
    if (!form || form.id !== "controls") return;
    const params = event.detail.parameters;
    const trigger = event.detail.triggeringEvent;
    if (trigger && trigger.target && trigger.target.name === "sort") params.delete("order");
    for (const [key, value] of Array.from(params.entries())) {
      if (value === "") params.delete(key);
    }
    if (params.get("view") === "grid") params.delete("view");
  });
}
