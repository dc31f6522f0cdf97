// The headset player (issue 14): an immersive-vr WebXR session that paints the page's own
// <video> on a hemisphere (180°), a sphere (360°) or a fisheye cap, one half of the frame per eye.
//
// Controls: a panel below the picture (−10 s, play/pause, +10 s, recenter, exit, a seek bar with
// scrub previews) pointed at with a controller's or a hand's ray and clicked with the trigger or
// a pinch; and on the controllers A/X play/pause, thumbstick left/right ∓10 s, thumbstick press
// recenter, B/Y show or hide the panel. Resume and progress reports are the page player's
// (static/js/player.js): the same <video> element plays here.
//
// Where the browser grants the WebXR "layers" feature (Quest Browser), a 180°/360° video goes on
// an XRMediaBinding equirect layer, which the compositor samples at full resolution; otherwise
// (and for fisheye, which an equirect layer cannot express, or swapped eyes) the three.js mesh.
import { THREE, videoSphere, disposeSphere } from "./scene.js";

const PANEL_W = 1024;
const PANEL_H = 320;
const BUTTONS = [
  { id: "back", label: "−10 s" },
  { id: "toggle", label: "Play" },
  { id: "forward", label: "+10 s" },
  { id: "recenter", label: "Recenter" },
  { id: "exit", label: "Exit VR" },
];
const BAR = { x: 48, y: 120, w: PANEL_W - 96, h: 44 };
const BUTTON_Y = 200;
const BUTTON_H = 96;

function clock(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function buttonRect(i) {
  const gap = 16;
  const w = (PANEL_W - 2 * BAR.x - gap * (BUTTONS.length - 1)) / BUTTONS.length;
  return { x: BAR.x + i * (w + gap), y: BUTTON_Y, w, h: BUTTON_H };
}

function inside(r, x, y) {
  return x >= r.x && x <= r.x + r.w && y >= r.y && y <= r.y + r.h;
}

// The seek bar's previews come from the sprite sheet's WebVTT (the same as the page's seek bar).
async function loadCues(url) {
  if (!url) return [];
  try {
    const response = await fetch(url);
    if (!response.ok) return [];
    const text = await response.text();
    const stamp = (t) => t.split(":").reduce((acc, part) => acc * 60 + parseFloat(part), 0);
    const cues = [];
    for (const block of text.split(/\r?\n\r?\n/)) {
      const lines = block.trim().split(/\r?\n/);
      const i = lines.findIndex((l) => l.includes("-->"));
      if (i < 0 || !lines[i + 1]) continue;
      const [from, to] = lines[i].split("-->").map((s) => stamp(s.trim().split(" ")[0]));
      const [file, frag] = lines[i + 1].trim().split("#xywh=");
      if (!frag) continue;
      const [x, y, w, h] = frag.split(",").map(Number);
      cues.push({ from, to, url: new URL(file, response.url).href, x, y, w, h });
    }
    return cues;
  } catch {
    return [];
  }
}

class Panel {
  constructor(video, spritesUrl, stereo) {
    this.video = video;
    this.stereo = stereo;
    this.canvas = document.createElement("canvas");
    this.canvas.width = PANEL_W;
    this.canvas.height = PANEL_H;
    this.ctx = this.canvas.getContext("2d");
    this.texture = new THREE.CanvasTexture(this.canvas);
    this.texture.colorSpace = THREE.SRGBColorSpace;
    const aspect = PANEL_H / PANEL_W;
    this.mesh = new THREE.Mesh(
      new THREE.PlaneGeometry(1.0, aspect),
      new THREE.MeshBasicMaterial({ map: this.texture, transparent: true }),
    );
    this.mesh.position.set(0, -0.42, -1.1);
    this.mesh.lookAt(0, 0, 0);
    this.mesh.name = "panel";
    // The scrub preview: one sprite tile above the seek bar while a ray points at it.
    this.preview = document.createElement("canvas");
    this.preview.width = 320;
    this.preview.height = 200;
    this.previewTexture = new THREE.CanvasTexture(this.preview);
    this.previewTexture.colorSpace = THREE.SRGBColorSpace;
    this.previewMesh = new THREE.Mesh(
      new THREE.PlaneGeometry(0.32, 0.2),
      new THREE.MeshBasicMaterial({ map: this.previewTexture, transparent: true }),
    );
    this.previewMesh.visible = false;
    this.mesh.add(this.previewMesh);
    this.hover = null;
    this.cues = [];
    this.images = new Map();
    loadCues(spritesUrl).then((cues) => { this.cues = cues; });
    this.lastKey = "";
  }

  // Where on the panel (canvas pixels) a panel UV is, and what is there.
  target(uv) {
    const x = uv.x * PANEL_W;
    const y = (1 - uv.y) * PANEL_H;
    const bar = { x: BAR.x, y: BAR.y - 16, w: BAR.w, h: BAR.h + 32 };
    if (inside(bar, x, y)) return { id: "seek", frac: Math.min(1, Math.max(0, (x - BAR.x) / BAR.w)) };
    const i = BUTTONS.findIndex((_, k) => inside(buttonRect(k), x, y));
    return i >= 0 ? { id: BUTTONS[i].id } : null;
  }

  seekTime(frac) {
    const d = this.video.duration;
    return Number.isFinite(d) ? frac * d : 0;
  }

  draw() {
    const v = this.video;
    const key = `${Math.floor(v.currentTime * 4)}|${v.paused}|${this.hover && this.hover.id}|${this.hover && this.hover.frac}|${v.duration}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    const c = this.ctx;
    c.clearRect(0, 0, PANEL_W, PANEL_H);
    c.fillStyle = "rgba(16, 18, 24, 0.92)";
    c.beginPath();
    c.roundRect(0, 0, PANEL_W, PANEL_H, 28);
    c.fill();
    c.fillStyle = "#eef0f4";
    c.font = "600 44px system-ui, sans-serif";
    c.textBaseline = "middle";
    c.fillText(`${clock(v.currentTime)} / ${clock(v.duration)}`, BAR.x, 58);
    // seek bar
    const frac = Number.isFinite(v.duration) && v.duration > 0 ? v.currentTime / v.duration : 0;
    c.fillStyle = "#2e3340";
    c.fillRect(BAR.x, BAR.y, BAR.w, BAR.h);
    c.fillStyle = "#5aa9ff";
    c.fillRect(BAR.x, BAR.y, BAR.w * frac, BAR.h);
    if (this.hover && this.hover.id === "seek") {
      c.fillStyle = "#ffd35a";
      c.fillRect(BAR.x + BAR.w * this.hover.frac - 3, BAR.y - 10, 6, BAR.h + 20);
    }
    BUTTONS.forEach((b, i) => {
      const r = buttonRect(i);
      c.fillStyle = this.hover && this.hover.id === b.id ? "#3d4660" : "#222631";
      c.beginPath();
      c.roundRect(r.x, r.y, r.w, r.h, 18);
      c.fill();
      c.fillStyle = "#eef0f4";
      c.font = "600 38px system-ui, sans-serif";
      c.textAlign = "center";
      const label = b.id === "toggle" ? (v.paused ? "Play" : "Pause") : b.label;
      c.fillText(label, r.x + r.w / 2, r.y + r.h / 2);
      c.textAlign = "start";
    });
    this.texture.needsUpdate = true;
    this.drawPreview();
  }

  drawPreview() {
    const h = this.hover;
    if (!h || h.id !== "seek" || !this.cues.length) { this.previewMesh.visible = false; return; }
    const t = this.seekTime(h.frac);
    const cue = this.cues.find((q) => t >= q.from && t < q.to) || this.cues[this.cues.length - 1];
    let img = this.images.get(cue.url);
    if (!img) {
      img = new Image();
      img.onload = () => { this.lastKey = ""; };
      img.src = cue.url;
      this.images.set(cue.url, img);
    }
    const c = this.preview.getContext("2d");
    c.clearRect(0, 0, 320, 200);
    if (img.complete && img.naturalWidth) {
      // One eye's part of the tile (the tiles are of the whole frame), kept in proportion.
      const sw = this.stereo === "sbs" ? cue.w / 2 : cue.w;
      const sh = this.stereo === "tb" ? cue.h / 2 : cue.h;
      const scale = Math.min(320 / sw, 180 / sh);
      const dw = sw * scale;
      const dh = sh * scale;
      c.drawImage(img, cue.x, cue.y, sw, sh, (320 - dw) / 2, (180 - dh) / 2, dw, dh);
    }
    c.fillStyle = "rgba(0,0,0,0.75)";
    c.fillRect(0, 160, 320, 40);
    c.fillStyle = "#fff";
    c.font = "600 28px system-ui, sans-serif";
    c.textAlign = "center";
    c.fillText(clock(t), 160, 182);
    this.previewTexture.needsUpdate = true;
    const x = (h.frac - 0.5) * (BAR.w / PANEL_W);
    this.previewMesh.position.set(x, 0.27, 0.01);
    this.previewMesh.visible = true;
  }

  dispose() {
    this.texture.dispose();
    this.previewTexture.dispose();
    this.mesh.geometry.dispose();
    this.mesh.material.dispose();
    this.previewMesh.geometry.dispose();
    this.previewMesh.material.dispose();
  }
}

function yawOf(object) {
  const e = new THREE.Euler().setFromQuaternion(object.getWorldQuaternion(new THREE.Quaternion()), "YXZ");
  return e.y;
}

export class XRPlayer {
  constructor({ video, projection, sprites, onEnd }) {
    this.video = video;
    this.p = projection;
    this.sprites = sprites;
    this.onEnd = onEnd;
    this.frames = 0;
    this.frameTimes = [];
    this.pressed = new Map();
    this.usingLayer = false;
  }

  // Start the session: called from the "Enter VR" click (a session needs the user's gesture).
  async start() {
    const session = await navigator.xr.requestSession("immersive-vr", {
      optionalFeatures: ["local-floor", "layers", "hand-tracking"],
    });
    this.session = session;
    const renderer = (this.renderer = new THREE.WebGLRenderer({ antialias: true, alpha: true }));
    renderer.setPixelRatio(1);
    renderer.setClearColor(0x000000, 1); // outside a 180° picture is black
    renderer.xr.enabled = true;
    renderer.xr.setReferenceSpaceType("local");
    renderer.domElement.className = "vr-xr-canvas";
    document.body.appendChild(renderer.domElement);
    this.scene = new THREE.Scene();
    this.world = new THREE.Group(); // turned by recentring: the picture and the panel
    this.scene.add(this.world);
    this.sphere = videoSphere(this.video, this.p);
    this.world.add(this.sphere.group);
    this.panel = new Panel(this.video, this.sprites, this.p.stereo);
    this.world.add(this.panel.mesh);
    this.camera = new THREE.PerspectiveCamera(70, 1, 0.05, 200);
    this.raycaster = new THREE.Raycaster();
    this.rays = [0, 1].map((i) => this.addController(i));
    session.addEventListener("end", () => this.cleanup());
    await renderer.xr.setSession(session);
    this.tryMediaLayer();
    this.video.play().catch(() => {});
    renderer.setAnimationLoop((time, frame) => this.frame(time, frame));
    return this;
  }

  addController(i) {
    const controller = this.renderer.xr.getController(i);
    const line = new THREE.Line(
      new THREE.BufferGeometry().setFromPoints([new THREE.Vector3(0, 0, 0), new THREE.Vector3(0, 0, -1)]),
      new THREE.LineBasicMaterial({ color: 0x5aa9ff }),
    );
    line.scale.z = 3;
    controller.add(line);
    controller.addEventListener("select", () => this.onSelect(controller));
    controller.addEventListener("connected", (e) => {
      controller.userData.hand = e.data.handedness;
      controller.userData.kind = e.data.hand ? "hand" : "controller";
    });
    this.scene.add(controller);
    return { controller, line };
  }

  // The WebXR Layers path (https://immersive-web.github.io/layers/): the video on an equirect
  // media layer behind three.js's projection layer (renderState.layers is back to front), which
  // then draws only the panel and the rays over a transparent clear, blended by its alpha.
  // Taken only when three.js itself got a projection layer (XRWebGLBinding.createProjectionLayer:
  // the session has layers), and that layer is taken from three.js: the render state three.js
  // set is pending until the next frame (updateRenderState), so session.renderState.layers is
  // still empty here. Swapped eyes stay on the mesh: the layer's invertStereo is in the spec,
  // but no implementation here honours it (tests/test_vr_browser.py), and wrong eyes are worse
  // than a softer picture.
  tryMediaLayer() {
    const p = this.p;
    const s = this.session;
    if (typeof XRMediaBinding === "undefined" || p.eye_swap || !(p.type === "180" || p.type === "360")) return;
    const base = this.renderer.xr.getBaseLayer();
    if (!base || !("textureWidth" in base)) return; // an XRWebGLLayer: no layers in this session
    try {
      const binding = new XRMediaBinding(s);
      const layout = { sbs: "stereo-left-right", tb: "stereo-top-bottom" }[p.stereo] || "mono";
      this.layer = binding.createEquirectLayer(this.video, {
        space: this.renderer.xr.getReferenceSpace(),
        layout,
        centralHorizontalAngle: p.type === "360" ? 2 * Math.PI : Math.PI,
        upperVerticalAngle: Math.PI / 2,
        lowerVerticalAngle: -Math.PI / 2,
      });
      base.blendTextureSourceAlpha = true; // the spec's default, said: the video shows through
      s.updateRenderState({ layers: [this.layer, base] });
      this.sphere.group.visible = false;
      this.renderer.setClearColor(0x000000, 0);
      this.usingLayer = true;
    } catch (err) {
      console.warn("WebXR media layer unavailable, drawing the video on a mesh:", err.message);
      this.layer = null;
      this.usingLayer = false;
      this.sphere.group.visible = true;
    }
  }

  // What a controller's ray points at on the panel, if anything.
  aim(controller) {
    if (!this.panel.mesh.visible) return null;
    const m = new THREE.Matrix4().extractRotation(controller.matrixWorld);
    this.raycaster.ray.origin.setFromMatrixPosition(controller.matrixWorld);
    this.raycaster.ray.direction.set(0, 0, -1).applyMatrix4(m);
    const hit = this.raycaster.intersectObject(this.panel.mesh, false)[0];
    return hit && hit.uv ? { ...this.panel.target(hit.uv), distance: hit.distance } : null;
  }

  onSelect(controller) {
    const target = this.aim(controller);
    if (!target) {
      this.panel.mesh.visible = true; // a click anywhere brings the panel back
      return;
    }
    if (target.id === "seek") this.seekTo(this.panel.seekTime(target.frac));
    else this.act(target.id);
  }

  act(id) {
    const v = this.video;
    switch (id) {
      case "toggle": if (v.paused || v.ended) v.play().catch(() => {}); else v.pause(); break;
      case "back": this.seekTo(Math.max(0, v.currentTime - 10)); break;
      case "forward": this.seekTo(Math.min(v.duration || Infinity, v.currentTime + 10)); break;
      case "recenter": this.recenter(); break;
      case "exit": this.session.end(); break;
      case "panel": this.panel.mesh.visible = !this.panel.mesh.visible; break;
    }
  }

  seekTo(t) {
    if (Number.isFinite(t)) this.video.currentTime = t;
  }

  // Turn the picture and the panel to where the head looks now.
  recenter() {
    const yaw = yawOf(this.renderer.xr.getCamera());
    this.world.rotation.y = yaw;
    if (this.usingLayer && this.layer && typeof XRRigidTransform !== "undefined") {
      this.layer.transform = new XRRigidTransform(
        { x: 0, y: 0, z: 0, w: 1 },
        { x: 0, y: Math.sin(yaw / 2), z: 0, w: Math.cos(yaw / 2) },
      );
    }
    this.recentered = yaw;
  }

  // Controller buttons (xr-standard mapping): edges only, so a held button acts once.
  pollButtons() {
    for (const source of this.session.inputSources) {
      const pad = source.gamepad;
      if (!pad) continue;
      const hand = source.handedness;
      const edge = (name, down) => {
        const key = `${hand}:${name}`;
        const was = this.pressed.get(key) || false;
        this.pressed.set(key, down);
        return down && !was;
      };
      const b = (i) => Boolean(pad.buttons[i] && pad.buttons[i].pressed);
      if (edge("a", b(4))) this.act("toggle");
      if (edge("b", b(5))) this.act("panel");
      if (edge("stick", b(3))) this.act("recenter");
      const x = pad.axes.length >= 4 ? pad.axes[2] : pad.axes[0] || 0;
      if (edge("right", x > 0.7)) this.act("forward");
      if (edge("left", x < -0.7)) this.act("back");
    }
  }

  frame(time) {
    this.frames++;
    this.frameTimes.push(time);
    if (this.frameTimes.length > 240) this.frameTimes.shift();
    this.pollButtons();
    let hover = null;
    for (const { controller, line } of this.rays) {
      const target = this.aim(controller);
      line.scale.z = target ? target.distance : 3;
      if (target && !hover) hover = target;
    }
    this.panel.hover = hover;
    this.panel.draw();
    this.renderer.render(this.scene, this.camera);
  }

  // Frames per second over the last frames the loop drew.
  fps() {
    const t = this.frameTimes;
    if (t.length < 2) return 0;
    return ((t.length - 1) * 1000) / (t[t.length - 1] - t[0]);
  }

  cleanup() {
    if (this.ended) return;
    this.ended = true;
    if (this.layer) this.layer.destroy();
    this.renderer.setAnimationLoop(null);
    disposeSphere(this.sphere);
    this.panel.dispose();
    this.renderer.dispose();
    this.renderer.domElement.remove();
    if (this.onEnd) this.onEnd(this);
  }
}
