// The admin dashboard polls its live region with htmx (hx-trigger="every 3s"); a hidden tab
// should not keep the server busy, so polls are cancelled while the document is hidden.
if (!window.lvsAdminPolling) {
  window.lvsAdminPolling = true;
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (document.hidden && event.detail.elt.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });
}
