// Headset mode (issue 14): in the Quest Browser (or another headset browser) <html> gets the
// class "headset", and static/css/vr.css makes every control at least 48 px and the grid
// comfortable at arm's length. Set at once, before the first paint of a boosted page.
const HEADSET_UA = /OculusBrowser|Quest|Pico|Wolvic|VR\b/;

export function isHeadset(ua = navigator.userAgent) {
  return HEADSET_UA.test(ua);
}

export function installHeadset() {
  if (isHeadset()) document.documentElement.classList.add("headset");
}
