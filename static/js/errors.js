// A request htmx sends that fails must not fail silently: its reason (our error answers are
// short plain text, or the error page's message) shows in one toast at the bottom of the page,
// announced to screen readers, until it is clicked or 8 seconds pass. Answers that redirect
// (HX-Redirect, HX-Location: sign in first, a refused role change) never get here.
let timer = 0;

function messageOf(xhr) {
  let text = xhr.responseText || "";
  if ((xhr.getResponseHeader("Content-Type") || "").includes("text/html")) {
    const doc = new DOMParser().parseFromString(text, "text/html");
    const found = doc.querySelector(".error-page .reason") || doc.querySelector(".error-page h1");
    text = found ? found.textContent : "";
  }
  text = text.trim().slice(0, 300);
  return text || `The server answered ${xhr.status}. Try again.`;
}

function show(text) {
  const toast = document.getElementById("toast");
  if (!toast) return;
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(timer);
  timer = setTimeout(() => { toast.hidden = true; }, 8000);
}

export function installErrors() {
  // base.html's htmx-config answers 4xx/5xx without swapping and without htmx's console error.
  document.body.addEventListener("htmx:afterRequest", (e) => {
    const xhr = e.detail.xhr;
    if (!xhr || xhr.status < 400) return;
    const moved = ["HX-Location", "HX-Redirect", "HX-Refresh"].some((h) => xhr.getResponseHeader(h));
    if (!moved) show(messageOf(xhr));  // a redirected answer tells its own story
  });
  document.body.addEventListener("htmx:sendError", () =>
    show("The server did not answer. Check the connection and try again."));
  document.addEventListener("click", (e) => {
    if (e.target.id === "toast") e.target.hidden = true;
  });
}
