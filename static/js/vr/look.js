// Outside the headset (issue 14): a VR video shows one eye's view that you turn by dragging
// (mouse, touch) or by turning the phone (device orientation), not the raw side-by-side frame.
// "Raw frame" shows the video element as it is. The player's own controls keep working: this
// only paints the same <video> element on a canvas over it.
import { THREE, videoSphere, disposeSphere } from "./scene.js";

const FOV = 80;

export class LookView {
  constructor(stage, video, projection) {
    this.stage = stage;
    this.video = video;
    this.p = projection;
    this.yaw = 0; // radians, positive turns left
    this.pitch = 0;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "vr-view";
    this.canvas.setAttribute("aria-label", "Look around: drag, swipe or turn the device");
    this.canvas.setAttribute("role", "img");
    video.after(this.canvas);
    this.renderer = new THREE.WebGLRenderer({ canvas: this.canvas, antialias: false, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(FOV, 16 / 9, 0.1, 200);
    this.camera.layers.enable(1); // the left eye's mesh (mono meshes are on layer 0)
    this.sphere = videoSphere(video, projection);
    this.scene.add(this.sphere.group);
    this.frames = 0;
    this.raw = false;
    this.bind();
    this.resize();
    this.stage.classList.add("vr-look");
    this.draw();
    this.loop();
    // Show the first frame before play (the page asks only for metadata).
    if (video.readyState < 2 && video.preload === "metadata") video.preload = "auto";
    this.onData = () => this.draw();
    video.addEventListener("loadeddata", this.onData);
    video.addEventListener("seeked", this.onData);
  }

  bind() {
    let last = null;
    this.canvas.addEventListener("pointerdown", (e) => {
      last = { x: e.clientX, y: e.clientY, moved: 0 };
      this.canvas.setPointerCapture(e.pointerId);
    });
    this.canvas.addEventListener("pointermove", (e) => {
      if (!last) return;
      const dx = e.clientX - last.x;
      const dy = e.clientY - last.y;
      last.moved += Math.abs(dx) + Math.abs(dy);
      last.x = e.clientX;
      last.y = e.clientY;
      this.turn(dx, dy);
    });
    const up = () => {
      // A click (no drag) plays or pauses, as a click on the flat video does.
      if (last && last.moved < 4) this.video.paused ? this.video.play().catch(() => {}) : this.video.pause();
      last = null;
    };
    this.canvas.addEventListener("pointerup", up);
    this.canvas.addEventListener("pointercancel", () => { last = null; });
    this.canvas.addEventListener("keydown", (e) => {
      const step = { ArrowLeft: [20, 0], ArrowRight: [-20, 0], ArrowUp: [0, 20], ArrowDown: [0, -20] }[e.key];
      if (step) { this.turn(step[0], step[1]); e.preventDefault(); e.stopPropagation(); }
    });
    this.orient = (e) => {
      if (e.alpha == null || this.raw) return;
      // Phone held upright in portrait: alpha turns around the vertical, beta tilts.
      this.yaw = THREE.MathUtils.degToRad(e.alpha);
      this.pitch = THREE.MathUtils.clamp(THREE.MathUtils.degToRad(e.beta - 90), -1.5, 1.5);
      this.draw();
    };
    window.addEventListener("deviceorientation", this.orient);
    this.onResize = () => { this.resize(); this.draw(); };
    window.addEventListener("resize", this.onResize);
  }

  turn(dx, dy) {
    const perPixel = THREE.MathUtils.degToRad(FOV) / (this.canvas.clientHeight || 400);
    this.yaw += dx * perPixel;
    this.pitch = THREE.MathUtils.clamp(this.pitch + dy * perPixel, -1.5, 1.5);
    this.draw();
  }

  resize() {
    const w = this.stage.clientWidth || 640;
    const h = this.stage.clientHeight || 360;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
  }

  draw() {
    if (this.raw) return;
    this.camera.rotation.set(this.pitch, this.yaw, 0, "YXZ");
    this.renderer.render(this.scene, this.camera);
    this.frames++;
  }

  // Paint each new video frame (requestVideoFrameCallback where there is one).
  loop() {
    if (this.stopped) return;
    const v = this.video;
    if (v.requestVideoFrameCallback) v.requestVideoFrameCallback(() => { this.draw(); this.loop(); });
    else requestAnimationFrame(() => { if (!v.paused) this.draw(); this.loop(); });
  }

  setRaw(raw) {
    this.raw = raw;
    this.canvas.hidden = raw;
    this.stage.classList.toggle("vr-look", !raw);
    if (!raw) this.draw();
  }

  destroy() {
    this.stopped = true;
    window.removeEventListener("deviceorientation", this.orient);
    window.removeEventListener("resize", this.onResize);
    this.video.removeEventListener("loadeddata", this.onData);
    this.video.removeEventListener("seeked", this.onData);
    disposeSphere(this.sphere);
    this.renderer.dispose();
    this.canvas.remove();
    this.stage.classList.remove("vr-look");
  }
}
