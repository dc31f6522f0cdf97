// Passkeys (WebAuthn): sign in with a button or from the name field's autofill (conditional UI),
// and add a passkey on the account page. The server keeps the challenges (blueprints/auth.py).

const fromB64u = (s) => {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
};
const toB64u = (buf) => {
  let bin = "";
  for (const byte of new Uint8Array(buf)) bin += String.fromCharCode(byte);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content ?? "";
}

async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch { data = {}; }
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function creationOptions(json) {
  const o = JSON.parse(json);
  o.challenge = fromB64u(o.challenge);
  o.user.id = fromB64u(o.user.id);
  o.excludeCredentials = (o.excludeCredentials || []).map((c) => ({ ...c, id: fromB64u(c.id) }));
  return o;
}

function requestOptions(json) {
  const o = JSON.parse(json);
  o.challenge = fromB64u(o.challenge);
  o.allowCredentials = (o.allowCredentials || []).map((c) => ({ ...c, id: fromB64u(c.id) }));
  return o;
}

// The credential as the JSON the server's webauthn library parses (what toJSON() gives).
function credentialJSON(cred) {
  const r = cred.response;
  const out = {
    id: cred.id,
    rawId: toB64u(cred.rawId),
    type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
    clientExtensionResults: cred.getClientExtensionResults(),
    response: { clientDataJSON: toB64u(r.clientDataJSON) },
  };
  if (r.attestationObject) {
    out.response.attestationObject = toB64u(r.attestationObject);
    out.response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    out.response.authenticatorData = toB64u(r.authenticatorData);
    out.response.signature = toB64u(r.signature);
    if (r.userHandle) out.response.userHandle = toB64u(r.userHandle);
  }
  return out;
}

function say(root, text) {
  const status = root.querySelector("[data-passkey-status]");
  if (!status) return;
  status.textContent = text;
  status.hidden = !text;
}

let conditional = null; // the AbortController of the autofill request waiting on the login page

async function signIn(box, mediation) {
  if (mediation !== "conditional" && conditional) conditional.abort();
  const controller = new AbortController();
  if (mediation === "conditional") conditional = controller;
  const { handle, options } = await postJSON(box.dataset.optionsUrl, {});
  const cred = await navigator.credentials.get({
    publicKey: requestOptions(options),
    mediation,
    signal: controller.signal,
  });
  const done = await postJSON(box.dataset.finishUrl, {
    handle,
    credential: credentialJSON(cred),
    next: box.dataset.next || "",
  });
  window.location.assign(done.next);
}

function initLogin(box) {
  if (box.dataset.passkeysReady) return;
  box.dataset.passkeysReady = "1";
  const button = box.querySelector("[data-passkey-signin]");
  if (!button) return;
  if (!window.PublicKeyCredential) {
    button.disabled = true;
    say(box, "This browser has no passkey support; sign in with your password.");
    return;
  }
  button.addEventListener("click", () => {
    say(box, "");
    signIn(box, "optional").catch((err) => {
      if (err.name !== "AbortError") say(box, `Passkey sign-in failed: ${err.message}`);
    });
  });
  const check = PublicKeyCredential.isConditionalMediationAvailable;
  if (check) {
    check().then((ok) => {
      if (ok) signIn(box, "conditional").catch(() => {});
    }).catch(() => {});
  }
}

function initRegister(form) {
  if (form.dataset.passkeysReady) return;
  form.dataset.passkeysReady = "1";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(form, "");
    try {
      const { handle, options } = await postJSON(form.dataset.optionsUrl, {});
      const cred = await navigator.credentials.create({ publicKey: creationOptions(options) });
      await postJSON(form.dataset.finishUrl, {
        handle,
        credential: credentialJSON(cred),
        name: form.elements.name.value,
      });
      window.location.reload();
    } catch (err) {
      say(form, `The passkey was not added: ${err.message}`);
    }
  });
}

export function initPasskeys(root) {
  const scope = root.querySelectorAll ? root : document;
  for (const box of scope.querySelectorAll("[data-passkey-login]")) initLogin(box);
  for (const form of scope.querySelectorAll("[data-passkey-register]")) initRegister(form);
}
