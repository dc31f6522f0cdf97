// The video's sphere (issue 14): one mesh per eye, each with its half of the frame. Used by the
// headset (xr.js) and by the look-around view outside it (look.js).
//
// The projection is the server's one value (services/playback/projection.py), passed in as
// { type: "180"|"360"|"fisheye", stereo: "mono"|"sbs"|"tb", eye_swap, lens, fov }.
// Left eye: layer 1, right eye: layer 2 (three.js's WebXR cameras enable those layers per eye);
// mono: one mesh on layer 0, seen by both. In front of the viewer is -z.
import * as THREE from "../../vendor/three/three.module.js";

export { THREE };

const RADIUS = 50;

// The sphere (360°), hemisphere (180°) or fisheye cap the video is painted on, seen from inside,
// with the whole frame's UVs (0..1); the centre of the picture straight ahead.
export function baseGeometry(p) {
  if (p.type === "fisheye") return fisheyeGeometry(p.fov || 180);
  const full = p.type === "360";
  // SphereGeometry's phi runs from phiStart; with x mirrored (seen from inside) phi = 3π/2
  // is -z, so the middle of the picture (u = 0.5) lands straight ahead.
  const geometry = new THREE.SphereGeometry(RADIUS, 96, 48, full ? Math.PI / 2 : Math.PI, full ? 2 * Math.PI : Math.PI);
  geometry.scale(-1, 1, 1);
  return geometry;
}

// A cap of `fov` degrees around -z with equidistant fisheye UVs: a direction at angle a from the
// axis maps to radius a / (fov / 2) × 0.5 of the eye's circle (MKX200, MKX220, VRCA220, RF52,
// fisheye190 are all equidistant fisheyes; they differ by field of view).
function fisheyeGeometry(fov) {
  const half = (Math.min(fov, 359) * Math.PI) / 360;
  const geometry = new THREE.SphereGeometry(RADIUS, 96, 48, 0, 2 * Math.PI, 0, half);
  geometry.rotateX(-Math.PI / 2); // the cap around +y now faces -z
  const pos = geometry.attributes.position;
  const uv = geometry.attributes.uv;
  const d = new THREE.Vector3();
  for (let i = 0; i < pos.count; i++) {
    d.fromBufferAttribute(pos, i).normalize();
    const a = Math.acos(Math.min(1, Math.max(-1, -d.z)));
    const r = (a / half) * 0.5;
    const b = Math.atan2(d.y, d.x);
    uv.setXY(i, 0.5 + r * Math.cos(b), 0.5 + r * Math.sin(b));
  }
  return geometry;
}

// Which part of the frame an eye sees: [uScale, uOffset, vScale, vOffset]. Side by side: the left
// eye has the left half; top/bottom: the top half (v grows upwards). Eye swap trades them.
export function eyeWindow(p, eye) {
  const first = (eye === "left") !== Boolean(p.eye_swap);
  if (p.stereo === "sbs") return [0.5, first ? 0 : 0.5, 1, 0];
  if (p.stereo === "tb") return [1, 0, 0.5, first ? 0.5 : 0];
  return [1, 0, 1, 0];
}

// Two texels kept off the line between the eyes: linear filtering there, and the codec's
// half-resolution colour (4:2:0), would mix in a column of the other eye's picture.
function eyeGeometry(base, p, eye, video) {
  const geometry = base.clone();
  const [us, uo, vs, vo] = eyeWindow(p, eye);
  const du = us < 1 ? 2 / (video.videoWidth || 1024) : 0;
  const dv = vs < 1 ? 2 / (video.videoHeight || 1024) : 0;
  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));
  const uv = geometry.attributes.uv;
  for (let i = 0; i < uv.count; i++) {
    const u = clamp(uv.getX(i) * us + uo, uo + du, uo + us - du);
    const v = clamp(uv.getY(i) * vs + vo, vo + dv, vo + vs - dv);
    uv.setXY(i, u, v);
  }
  uv.needsUpdate = true;
  return geometry;
}

// The meshes for a projection, in a group that recentring turns. `eyes.left` is what the
// look-around view shows.
export function videoSphere(video, p) {
  const texture = new THREE.VideoTexture(video);
  texture.colorSpace = THREE.SRGBColorSpace;
  texture.minFilter = THREE.LinearFilter;
  texture.generateMipmaps = false;
  const material = new THREE.MeshBasicMaterial({ map: texture, side: p.type === "fisheye" ? THREE.DoubleSide : THREE.FrontSide });
  const base = baseGeometry(p);
  const group = new THREE.Group();
  const eyes = {};
  if (p.stereo === "mono") {
    eyes.left = eyes.right = new THREE.Mesh(base, material);
    group.add(eyes.left);
  } else {
    eyes.left = new THREE.Mesh(eyeGeometry(base, p, "left", video), material);
    eyes.right = new THREE.Mesh(eyeGeometry(base, p, "right", video), material);
    eyes.left.layers.set(1);
    eyes.right.layers.set(2);
    group.add(eyes.left, eyes.right);
    base.dispose();
  }
  return { group, eyes, texture, material };
}

export function disposeSphere(sphere) {
  sphere.texture.dispose();
  sphere.material.dispose();
  new Set([sphere.eyes.left, sphere.eyes.right]).forEach((m) => m.geometry.dispose());
}
