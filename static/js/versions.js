// "The version this browser plays best" (issue 17): a film or an episode held in several files
// opens through /play/…, which asks the play decision about each version with what this
// browser plays. It learns that from a cookie sent to /play only: the capability names of
// playback.js (canPlayType / isTypeSupported on fixed codec strings), written once per document.
import { capabilities } from "./playback.js";

export function installVersions() {
  const caps = capabilities();
  if (caps) document.cookie = `lvs_caps=${caps}; path=/play; max-age=31536000; SameSite=Lax`;
}
