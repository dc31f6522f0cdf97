// The watch page's organize panels: copy and paste tags (the tag clipboard), markers (jump to
// one; a new one takes the player's current time) and "add to playlist".
import { postForm, copiedTags, copyTags } from "./csrf.js";

function video() { return document.querySelector("[data-player] video"); }

function say(panel, text) { const s = panel.querySelector(".status"); if (s) s.textContent = text; }

async function onClick(event) {
  const seek = event.target.closest("[data-seek]");
  if (seek) {
    const v = video();
    if (v) { v.currentTime = parseFloat(seek.dataset.seek); v.play().catch(() => {}); }
    return;
  }
  const copy = event.target.closest("[data-tags-copy]");
  const paste = event.target.closest("[data-tags-paste]");
  if (!copy && !paste) return;
  const panel = event.target.closest("#tags");
  if (copy) {
    const names = Array.from(panel.querySelectorAll(".tag-list .tag > a")).map((a) => a.textContent.trim());
    copyTags(names);
    say(panel, names.length ? `Copied ${names.length} tag${names.length === 1 ? "" : "s"}.` : "No tags to copy.");
    return;
  }
  const names = copiedTags();
  if (!names.length) { say(panel, "Nothing copied yet."); return; }
  const form = panel.querySelector(".tag-add");
  form.querySelector('input[name="tag"]').value = names.join(",");
  window.htmx.trigger(form, "submit");
}

// A new marker is at the player's current time (htmx 2's parameters take assignments).
function onConfig(event) {
  const elt = event.detail.elt;
  const form = elt && elt.closest ? elt.closest("[data-marker-add]") : null;
  const v = video();
  if (form && v) event.detail.parameters.seconds = v.currentTime.toFixed(3);
}

async function onSubmit(event) {
  const form = event.target.closest("[data-playlist-add]");
  if (!form) return;
  event.preventDefault();
  const data = new FormData(form);
  const media = data.get("media");
  const playlist = data.get("playlist");
  const status = form.querySelector(".status");
  try {
    if (playlist) {
      await postForm(`${form.action.replace(/\/$/, "")}/${playlist}/add`, [["media", media]]);
      status.textContent = "Added.";
    } else {
      const name = (data.get("name") || "").trim();
      if (!name) { status.textContent = "Name the new playlist."; return; }
      await postForm(form.action, [["name", name], ["media", media]]);
      status.textContent = `Added to new playlist ${name}.`;
    }
  } catch (e) { status.textContent = `Failed: ${e.message}`; }
}

export function installOrganize() {
  document.addEventListener("click", onClick);
  document.addEventListener("submit", onSubmit, true);
  document.addEventListener("htmx:configRequest", onConfig);
}
