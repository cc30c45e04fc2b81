// Shared bits of the demo pages: connecting, the status badge, notices.

import {Client, Schema} from './jetstream-client/index.js';

export async function loadSchema() {
  const response = await fetch('demo_schema.json', {cache: 'no-cache'});
  if (!response.ok) throw new Error(`demo_schema.json: HTTP ${response.status}`);
  return new Schema(await response.json());
}

// The gateway serves these pages and speaks WebSocket on the same port.
export function gatewayUrl() {
  const protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${protocol}//${location.host}/`;
}

export async function connect() {
  const schema = await loadSchema();
  const client = new Client({url: gatewayUrl(), schema});
  const badge = document.getElementById('status');
  const show = (status) => {
    if (!badge) return;
    badge.dataset.status = status;
    badge.textContent = status.charAt(0).toUpperCase() + status.slice(1);
  };
  show(client.status);
  client.on('status', show);
  client.on('sessionLost', () => notice('The server ended the session; starting a new one.'));
  client.connect().catch((error) => notice(`Could not connect: ${error.message}`, 'error'));
  return client;
}

export function notice(text, kind = 'info', title = '') {
  let box = document.getElementById('notices');
  if (!box) {
    box = document.createElement('div');
    box.id = 'notices';
    document.body.append(box);
  }
  const el = document.createElement('div');
  el.className = `notice ${kind}`;
  if (title) {
    const strong = document.createElement('strong');
    strong.textContent = `${title} `;
    el.append(strong);
  }
  el.append(document.createTextNode(text));
  box.append(el);
  setTimeout(() => el.remove(), 4000);
}

// Flashes an element red (a change the server rejected).
export function flash(el) {
  if (!el) return;
  el.classList.remove('rejected');
  void el.offsetWidth;  // restart the animation
  el.classList.add('rejected');
  setTimeout(() => el.classList.remove('rejected'), 1300);
}

// Colours travel as 0xRRGGBBAA numbers (the iOS client's UIColor encoding).
export function cssColor(n) {
  if (typeof n !== 'number') return '#9aa3b5';
  const v = n >>> 0;
  const r = (v >>> 24) & 255;
  const g = (v >>> 16) & 255;
  const b = (v >>> 8) & 255;
  const a = (v & 255) / 255;
  return `rgba(${r}, ${g}, ${b}, ${a.toFixed(3)})`;
}

export function rgbaNumber(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex);
  return m ? (parseInt(m[1], 16) * 256 + 255) >>> 0 : 0x3d5afeff;
}

export const PALETTE = ['#3d5afe', '#00b894', '#fdcb6e', '#e17055', '#d63384', '#6c5ce7', '#2d3436'];

// Re-renders at most once per animation frame (with a timer as well, since
// hidden tabs get no animation frames).
export function renderLoop(render) {
  let queued = false;
  const run = () => {
    if (!queued) return;
    queued = false;
    render();
  };
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(run);
    setTimeout(run, 100);
  };
}
