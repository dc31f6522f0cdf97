// POST a form body with the CSRF token (the <meta name="csrf-token"> of base.html); JSON back.
export async function postForm(url, fields) {
  const body = new URLSearchParams();
  for (const [name, value] of fields) body.append(name, value);
  const token = document.querySelector('meta[name="csrf-token"]');
  const headers = { Accept: "application/json" };
  if (token) headers["X-CSRFToken"] = token.content;
  const response = await fetch(url, { method: "POST", body, headers, credentials: "same-origin" });
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

// The tag clipboard: tags copied from one item, pasted onto others (this browser only).
const CLIPBOARD = "lvs-tag-clipboard";

export function copiedTags() {
  try { return JSON.parse(localStorage.getItem(CLIPBOARD) || "[]"); } catch { return []; }
}

export function copyTags(tags) {
  localStorage.setItem(CLIPBOARD, JSON.stringify(tags));
}
