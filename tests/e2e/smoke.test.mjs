// Smoke test for the end-to-end machinery: the real binary serves the web client, headless
// Chromium loads it without errors, and restart() brings the server back on the same origin
// with its data. The web client's flows have their own test files.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { before, test } from "node:test";
import {
  api,
  apiRaw,
  apiRegister,
  launchBrowser,
  newPage,
  screenshot,
  startServer,
} from "./helpers.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});

test("the web client loads in Chromium without errors", async () => {
  const server = await startServer();
  const page = await newPage(browser);
  const response = await page.goto(server.url + "/");
  assert.equal(response.status(), 200);
  await page.waitForLoadState("load");
  assert.match(await page.title(), /parley/i);
  const file = await screenshot(page, "smoke");
  assert.ok(existsSync(file), `screenshot ${file} was written`);
  // Only uncaught exceptions here: the client is being rewritten, and its flow tests assert
  // the full list (console errors too) with expectNoErrors(page).
  assert.deepEqual(page.errors.filter((e) => e.startsWith("pageerror:")), []);
  await server.stop();
});

test("restart() brings the server back on the same port with the same data", async () => {
  const server = await startServer();
  const { url, port } = server;
  assert.equal((await apiRaw(url, "GET", "/healthz")).status, 200);
  const alice = await apiRegister(url, "alice");
  const page = await newPage(browser);
  assert.equal((await page.goto(url + "/")).status(), 200);

  await server.restart();
  assert.equal(server.port, port);
  assert.equal(server.url, url);
  assert.equal((await apiRaw(url, "GET", "/healthz")).status, 200);
  // Same data dir: the account and its session survived.
  assert.equal((await api(url, alice.token, "GET", "/api/me")).username, "alice");
  // The page's origin works again.
  assert.equal((await page.reload()).status(), 200);

  // stop() then restart() works too, and a stopped server refuses connections.
  await server.stop();
  await assert.rejects(apiRaw(url, "GET", "/healthz"));
  await server.restart();
  assert.equal((await apiRaw(url, "GET", "/healthz")).status, 200);
});
