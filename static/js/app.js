// Entry point, loaded once per document (hx-boost keeps the document). Document-wide listeners
// go in at once; each newly loaded page or region is set up from htmx.onLoad, idempotently.
import { initPlayer, installPlayer } from "./player.js";
import { installGallery } from "./gallery.js";
import { initLightbox, installLightbox } from "./lightbox.js";
import { initSelection, installSelection } from "./selection.js";
import { installOrganize } from "./organize.js";
import { initPasskeys } from "./passkeys.js";
import { installErrors } from "./errors.js";
import { installVrSelection } from "./vr/selection.js";
import { installHeadset } from "./vr/headset.js";
import { initLive, installLive } from "./live.js";
import { initMediaSession } from "./media-session.js";
import { initSlideshow, installSlideshow } from "./slideshow.js";
import { initUi, installUi } from "./ui.js";
import { initPlayerMenu, installPlayerMenu } from "./player-menu.js";
import { initVr } from "./vr/entry.js";
import { installVersions } from "./versions.js";
import { installCardClips } from "./card-clips.js";

document.documentElement.classList.add("js");
installPlayer();
installGallery();
installLightbox();
installSelection();
installOrganize();
installErrors();
installVrSelection();
installHeadset();
installLive();
installSlideshow();
installUi();
installPlayerMenu();
installVersions();
installCardClips();

window.htmx.onLoad((root) => {
  initPlayer(root);
  initPlayerMenu(root);
  initLightbox();
  initSelection();
  initPasskeys(root);
  initLive();
  initMediaSession();
  initSlideshow();
  initUi(root);
  initVr();
});
