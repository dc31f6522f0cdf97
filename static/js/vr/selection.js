// The selection bar's "Set projection…" (admins): one projection, or automatic, for every
// selected card (blueprints/admin_vr.py). The rest of the bar is static/js/selection.js.
import { postForm } from "../csrf.js";

const HASH = /\/watch\/([0-9a-f]{16})/;

function selectedHashes() {
  return Array.from(document.querySelectorAll("ul.cards > li.card.selected a"))
    .map((a) => HASH.exec(a.getAttribute("href")))
    .filter(Boolean)
    .map((m) => m[1]);
}

async function setProjection(select) {
  const bar = select.closest("[data-selection]");
  const status = (text) => { bar.querySelector(".sel-status").textContent = text; };
  const code = select.value;
  select.value = "";
  const media = selectedHashes();
  if (!code) return;
  if (!media.length) { status("Select some items first."); return; }
  try {
    const data = await postForm(select.dataset.url, [["projection", code], ...media.map((h) => ["media", h])]);
    const label = select.querySelector(`option[value="${code}"]`).textContent;
    status(`Projection of ${data.updated} item${data.updated === 1 ? "" : "s"}: ${label}. Reload to see the badges.`);
  } catch (e) { status(`Failed: ${e.message}`); }
}

export function installVrSelection() {
  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-bulk-projection]")) setProjection(event.target);
  });
}
