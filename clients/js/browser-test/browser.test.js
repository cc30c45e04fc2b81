// The demo pages in real (headless) Chromium, served by the real gateway:
// two tabs on shapes.html and two on chat.html must see each other's changes.
//
// Needs Debian's chromium (/usr/bin/chromium, or $CHROMIUM_PATH) and the
// binaries (see ../test/helpers/servers.js). Screenshots go to
// $TEST_ARTIFACTS_DIR, else <repo>/test-artifacts/.

import {test, describe, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdtempSync, mkdirSync, rmSync, existsSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {chromium} from 'playwright-core';

import {REPO_ROOT} from '../test/helpers/fixtures.js';
import {startServers} from '../test/helpers/servers.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = process.env.TEST_ARTIFACTS_DIR || path.join(REPO_ROOT, 'test-artifacts');
const WEB_DIR = path.join(REPO_ROOT, 'web');

describe('demo pages in Chromium', () => {
  let servers;
  let context;
  let profile;
  const pageErrors = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} not found: install Debian's chromium (tools/setup.sh) or set CHROMIUM_PATH`);
    }
    mkdirSync(ARTIFACTS, {recursive: true});
    servers = await startServers({gatewayArgs: [`--static_dir=${WEB_DIR}`]});
    profile = mkdtempSync(path.join(os.tmpdir(), 'jetstream-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: {width: 1280, height: 800},
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  after(async () => {
    if (context) await context.close();
    if (servers) await servers.stop();
    if (profile) rmSync(profile, {recursive: true, force: true});
  });

  async function open(page) {
    const p = await context.newPage();
    p.on('pageerror', (error) => pageErrors.push(`${page}: ${error.message}`));
    p.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(`${page} console: ${msg.text()}`);
    });
    await p.goto(`${servers.httpUrl}/${page}`);
    return p;
  }

  test('index page links to both demos', async () => {
    const page = await open('');
    assert.equal(await page.title(), 'Jetstream demos');
    const links = await page.$$eval('a.card', (as) => as.map((a) => a.getAttribute('href')));
    assert.deepEqual(links, ['shapes.html', 'chat.html']);
    await page.waitForSelector('#health[data-status="online"]');
    await page.screenshot({path: path.join(ARTIFACTS, 'index.png')});
    await page.close();
  });

  test('shapes: add and drag in one tab, the other tab follows within a second', async () => {
    const [p1, p2] = [await open('shapes.html'), await open('shapes.html')];
    for (const p of [p1, p2]) {
      await p.waitForFunction(() => window.shapesDemo && window.shapesDemo.scope && window.shapesDemo.scope.ready, null, {polling: 25});
      await p.waitForSelector('#status[data-status="online"]');
    }
    const before = await p2.evaluate(() => window.shapesDemo.scope.root.shapes.length);

    // Add a shape with the UI button in tab 1.
    await p1.click('#add');
    const uuid = await p1.evaluate(() => window.shapesDemo.scope.root.shapes.at(-1).uuid);
    await p2.waitForFunction((u) => window.shapesDemo.scope.get(u) !== undefined, uuid, {timeout: 2000, polling: 25});
    assert.equal(await p2.evaluate(() => window.shapesDemo.scope.root.shapes.length), before + 1);
    await p2.waitForSelector(`.shape[data-uuid="${uuid}"]`);

    // Drag it with the mouse in tab 1.
    const start = await p1.evaluate((u) => {
      const s = window.shapesDemo.scope.get(u);
      return {x: s.x, y: s.y};
    }, uuid);
    const box = await p1.locator(`.shape[data-uuid="${uuid}"]`).boundingBox();
    const dx = start.x < 500 ? 260 : -260;
    const dy = start.y < 250 ? 140 : -140;
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    await p1.mouse.move(cx, cy);
    await p1.mouse.down();
    await p1.mouse.move(cx + dx / 2, cy + dy / 2, {steps: 5});
    // Mid-drag, tab 2 already sees the shape moving.
    await p2.waitForFunction(
      ({u, x}) => window.shapesDemo.scope.get(u).x !== x,
      {u: uuid, x: start.x},
      {timeout: 1000},
    );
    await p1.mouse.move(cx + dx, cy + dy, {steps: 5});
    await p1.mouse.up();
    const expected = {x: start.x + dx, y: start.y + dy};
    const local = await p1.evaluate((u) => {
      const s = window.shapesDemo.scope.get(u);
      return {x: s.x, y: s.y};
    }, uuid);
    assert.deepEqual(local, expected);
    const t0 = Date.now();
    await p2.waitForFunction(
      ({u, x, y}) => {
        const s = window.shapesDemo.scope.get(u);
        const el = document.querySelector(`.shape[data-uuid="${u}"]`);
        return s.x === x && s.y === y && el && el.style.left === `${x}px` && el.style.top === `${y}px`;
      },
      {u: uuid, ...expected},
      {timeout: 1000},
    );
    assert.ok(Date.now() - t0 < 1000);

    // Recolour in tab 2 → tab 1.
    await p2.click(`.shape[data-uuid="${uuid}"]`);
    await p2.click('#palette button[data-colour="#d63384"]');
    await p1.waitForFunction((u) => window.shapesDemo.scope.get(u).color === 0xd63384ff, uuid, {timeout: 1000, polling: 25});

    // A rejected change visibly reverts: a notice, and the value comes back.
    await p1.click(`.shape[data-uuid="${uuid}"]`);
    await p1.click('#invalid');
    await p1.waitForSelector('.notice.error', {timeout: 2000, polling: 25});
    const noticeText = await p1.textContent('.notice.error');
    assert.match(noticeText, /Change rejected: Not valid type at 'x', should be Number/);
    await p1.waitForFunction(({u, x}) => window.shapesDemo.scope.get(u).x === x, {u: uuid, x: expected.x}, {polling: 25});
    assert.ok(await p1.$(`.shape[data-uuid="${uuid}"].rejected`), 'the shape flashes red');
    await p1.bringToFront();
    await p1.waitForTimeout(300);  // animations run in the front tab
    await p1.screenshot({path: path.join(ARTIFACTS, 'shapes-page1.png')});
    await p2.bringToFront();
    await p2.waitForTimeout(300);
    await p2.screenshot({path: path.join(ARTIFACTS, 'shapes-page2.png')});
    assert.equal(await p2.evaluate((u) => window.shapesDemo.scope.get(u).x, uuid), expected.x);
    await p1.close();
    await p2.close();
  });

  test('chat: a message posted in one tab appears in the other', async () => {
    const [p1, p2] = [await open('chat.html'), await open('chat.html')];
    for (const [p, name] of [[p1, 'Alice'], [p2, 'Bob']]) {
      await p.waitForFunction(() => window.chatDemo && window.chatDemo.scope && window.chatDemo.scope.ready, null, {polling: 25});
      await p.waitForSelector('#status[data-status="online"]');
      await p.fill('#name', name);
      await p.press('#name', 'Enter');
      await p.waitForFunction(() => window.chatDemo.me && window.chatDemo.me.scope !== null, null, {polling: 25});
    }
    await p1.waitForFunction(() => window.chatDemo.scope.root.users.length >= 2, null, {timeout: 2000, polling: 25});

    const text = `Hello from page 1 at ${new Date().toISOString()}`;
    await p1.fill('#text', text);
    await p1.click('#send');
    await p2.waitForFunction(
      (t) => [...document.querySelectorAll('.message .text')].some((el) => el.textContent === t),
      text,
      {timeout: 2000},
    );
    const seen = await p2.evaluate((t) => {
      const m = window.chatDemo.scope.root.messages.find((x) => x.text === t);
      return {author: m.author.username, postedAt: m.postedAt.getTime()};
    }, text);
    assert.equal(seen.author, 'Alice');
    assert.ok(Math.abs(seen.postedAt - Date.now()) < 60000);

    await p2.fill('#text', 'Hi Alice, Bob here.');
    await p2.press('#text', 'Enter');
    await p1.waitForFunction(
      () => window.chatDemo.scope.root.messages.some((m) => m.text === 'Hi Alice, Bob here.'),
      null,
      {timeout: 2000},
    );

    // The topic, changed in tab 2, shows in tab 1.
    await p2.fill('#topic-input', 'Release planning');
    await p2.click('#topic-form button');
    await p1.waitForFunction(() => document.getElementById('topic').textContent === 'Release planning', null, {timeout: 2000, polling: 25});

    await p1.waitForFunction(() => document.querySelectorAll('.message').length >= 2, null, {polling: 25});
    await p2.waitForFunction(() => document.querySelectorAll('.message').length >= 2, null, {polling: 25});
    await p1.bringToFront();
    await p1.waitForTimeout(300);  // animations run in the front tab
    await p1.screenshot({path: path.join(ARTIFACTS, 'chat-page1.png')});

    // A rejected topic change reverts, with a notice and a red flash.
    await p2.click('#invalid');
    await p2.waitForSelector('.notice.error', {timeout: 2000});
    assert.match(await p2.textContent('.notice.error'), /Not valid type at 'topic', should be String/);
    await p2.waitForFunction(() => window.chatDemo.scope.root.attributes.topic === 'Release planning', null, {polling: 25});
    assert.ok(await p2.$('#topic.rejected'), 'the topic flashes red');
    await p2.bringToFront();
    await p2.waitForTimeout(300);
    await p2.screenshot({path: path.join(ARTIFACTS, 'chat-page2.png')});
    await p1.close();
    await p2.close();
  });

  test('no page errors', () => {
    assert.deepEqual(pageErrors, []);
  });
});
