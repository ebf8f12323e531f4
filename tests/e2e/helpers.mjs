// Shared helpers for the end-to-end suite: the real `parley serve` binary and the web client in
// headless Chromium (Debian's /usr/bin/chromium driven by playwright-core, which downloads no
// browser of its own).
//
// Every server and browser started here is tracked and closed by an `after` hook this module
// registers on the test file's root, so a file needs no cleanup of its own (closing things
// earlier is fine: every close is idempotent). If the test process dies, the servers die with
// it (the kernel's parent-death signal, via setpriv); Playwright does the same for browsers.
//
//   PARLEY_BIN=path        the binary to run (default target/debug/parley; build with cargo build)
//   PARLEY_SCREENSHOTS=1   screenshot() writes docs/screenshots/<name>.png (else a temp dir)

import { spawn } from "node:child_process";
import { accessSync, constants as fsConstants, existsSync, mkdirSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createRequire } from "node:module";
import { constants as osConstants, tmpdir } from "node:os";
import path from "node:path";
import { after } from "node:test";
import { chromium } from "playwright-core";
import {
  PARLEY_BIN,
  PASSWORD,
  REPO,
  api as apiCall,
  apiRaw,
  eventually,
  sleep,
  waitForAddress,
} from "../realtime/helpers.mjs";

export { PARLEY_BIN, PASSWORD, REPO, apiRaw, eventually, sleep };

export const CHROMIUM = "/usr/bin/chromium";
const SETPRIV = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));
/** Every Playwright action, wait and navigation gives up after this. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Where screenshot() writes: the README's images with PARLEY_SCREENSHOTS=1, else a temp dir. */
export const SCREENSHOT_DIR =
  process.env.PARLEY_SCREENSHOTS === "1"
    ? path.join(REPO, "docs", "screenshots")
    : path.join(tmpdir(), "parley-e2e-screenshots");

/**
 * Flags every test server gets unless `args` sets the same flag: offline presence shows half a
 * second after the last tab closes (instead of 3 s), and a silent connection is noticed within
 * 10 s (instead of 45 s).
 */
export const TEST_SERVER_DEFAULTS = {
  "--presence-grace-ms": "500",
  "--ping-interval-ms": "5000",
  "--ping-timeout-ms": "5000",
};

const servers = new Set();
const browsers = new Set();
const ownedDirs = new Set();

// ---------------------------------------------------------------------------------------------
// The server

/**
 * Start `parley serve` on 127.0.0.1 (`port`, default a free one) with `dataDir` (default a fresh
 * temp dir, removed when the file's tests end) and extra command-line `args` (which override
 * TEST_SERVER_DEFAULTS; --listen, --data-dir and --log-format are this helper's). PARLEY_*
 * variables from the environment are not passed on, so a developer's settings cannot leak in.
 *
 * Resolves `{ url, port, dataDir, logs, proc, stop(signal), restart() }`:
 * - `stop(signal = "SIGTERM")` signals the process and resolves `{ code, signal }` once it has
 *   exited (SIGKILL after 15 s). The data dir stays, so the server can be started again.
 * - `restart()` stops it (if running) and starts it again on the same port with the same data
 *   dir, so pages can reconnect to the same origin. Resolves the server once it listens.
 * - `logs` holds the last 200 lines of stderr (JSON), `proc` the current child process.
 */
export async function startServer({ dataDir, port = 0, args = [] } = {}) {
  for (const flag of ["--listen", "--data-dir", "--log-format"]) {
    if (args.some((a) => a === flag || a.startsWith(`${flag}=`))) {
      throw new Error(`startServer: ${flag} is set by the helper (use the port / dataDir options)`);
    }
  }
  try {
    accessSync(PARLEY_BIN, fsConstants.X_OK);
  } catch (e) {
    throw new Error(`cannot run ${PARLEY_BIN}: ${e.code} (build it with cargo build or set PARLEY_BIN)`);
  }
  if (!dataDir) {
    dataDir = await mkdtemp(path.join(tmpdir(), "parley-e2e-"));
    ownedDirs.add(dataDir);
  }
  const given = new Set(args.filter((a) => a.startsWith("--")).map((a) => a.split("=")[0]));
  const defaults = Object.entries(TEST_SERVER_DEFAULTS).filter(([flag]) => !given.has(flag)).flat();

  const logs = [];
  let current = null; // { proc, exited } while a process runs

  const server = {
    url: null,
    port,
    dataDir,
    logs,
    get proc() {
      return current?.proc ?? null;
    },
    /** True while the server process is running. */
    get running() {
      return current !== null;
    },
    async stop(signal = "SIGTERM") {
      const running = current;
      if (!running) return null;
      const { proc, exited } = running;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      const status = await exited;
      clearTimeout(timer);
      if (current === running) current = null;
      servers.delete(server);
      return status;
    },
    async restart() {
      await server.stop();
      await launch(server.port, 10_000);
      return server;
    },
  };

  // Start the process; while the port is still held (TIME_WAIT, or a process that has not quite
  // let go), try again for up to `retryMs`.
  async function launch(wantPort, retryMs) {
    const deadline = Date.now() + retryMs;
    for (;;) {
      try {
        const addr = await spawnOnce(wantPort);
        server.port = Number(addr.slice(addr.lastIndexOf(":") + 1));
        server.url = `http://127.0.0.1:${server.port}`;
        return;
      } catch (e) {
        if (!e.addrInUse || Date.now() > deadline) throw e;
        await sleep(100);
      }
    }
  }

  function spawnOnce(wantPort) {
    const argv = [
      "serve",
      "--listen", `127.0.0.1:${wantPort}`,
      "--data-dir", dataDir,
      "--log-format", "json",
      ...defaults,
      ...args,
    ];
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PARLEY_")));
    // Through setpriv (util-linux, always on Debian), the kernel kills the server when this
    // process dies in any way, even by SIGKILL; setpriv execs it, so the pid is the server's.
    const proc = SETPRIV
      ? spawn(SETPRIV, ["--pdeathsig", "KILL", "--", PARLEY_BIN, ...argv], { stdio: ["ignore", "ignore", "pipe"], env })
      : spawn(PARLEY_BIN, argv, { stdio: ["ignore", "ignore", "pipe"], env });
    const exited = new Promise((resolve) => proc.once("exit", (code, signal) => resolve({ code, signal })));
    const mine = { proc, exited };
    current = mine;
    servers.add(server);
    exited.then(() => {
      if (current === mine) current = null;
    });

    return waitForAddress(proc, exited, logs);
  }

  await launch(port, port ? 10_000 : 0);
  return server;
}

// ---------------------------------------------------------------------------------------------
// The browser

/**
 * Launch headless Chromium (Debian's, at /usr/bin/chromium). `options` go to
 * `chromium.launch` (extra `args` are added to the defaults). Closed by the after hook.
 */
export async function launchBrowser(options = {}) {
  const { args = [], ...rest } = options;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
      ...args,
    ],
    ...rest,
  });
  browsers.add(browser);
  browser.once("disconnected", () => browsers.delete(browser));
  return browser;
}

/**
 * A page in a fresh browser context (its own cookies and storage: one context is one person).
 * `viewport` defaults to 1280×800, `colorScheme` to "light", `locale` to "en-US"; any other
 * option goes to `browser.newContext` (e.g. `isMobile`, `hasTouch`, `permissions`). CSP is
 * bypassed so checkA11y can inject axe-core. Every wait times out after DEFAULT_TIMEOUT_MS.
 *
 * `page.errors` collects the page's console errors and uncaught exceptions as strings; assert
 * it empty with expectNoErrors(page). `page.close()` also closes the context.
 */
export async function newPage(browser, options = {}) {
  const { viewport = { width: 1280, height: 800 }, colorScheme = "light", locale = "en-US", ...rest } = options;
  const context = await browser.newContext({ viewport, colorScheme, locale, bypassCSP: true, ...rest });
  context.setDefaultTimeout(DEFAULT_TIMEOUT_MS);
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const { url, lineNumber } = msg.location();
    page.errors.push(`console.error: ${msg.text()}${url ? ` (${url}:${lineNumber + 1})` : ""}`);
  });
  page.on("pageerror", (err) => {
    page.errors.push(`pageerror: ${err.stack || err.message}`);
  });
  page.once("close", () => context.close().catch(() => {}));
  return page;
}

/**
 * Fails listing `page.errors` unless it is empty. `ignore` is a list of RegExps for errors a
 * test expects (e.g. /WebSocket connection .* failed/ while the server restarts).
 */
export function expectNoErrors(page, { ignore = [] } = {}) {
  const errors = page.errors.filter((e) => !ignore.some((re) => re.test(e)));
  if (errors.length) {
    throw new Error(`the page reported ${errors.length} error(s):\n  ${errors.join("\n  ")}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Accessibility and screenshots

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve("axe-core/axe.min.js");
/** The rules checkA11y runs: WCAG 2.0 and 2.1, levels A and AA. */
export const A11Y_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/**
 * Run axe-core on the page as it is now, with the WCAG 2.1 A/AA rules. `exclude` is a selector
 * or a list of selectors to leave out. Throws an Error listing every violation (rule id,
 * impact, help text and the offending elements' selectors; `error.violations` has them as
 * data) unless `throwOnViolations` is false; resolves the (then possibly non-empty) list of
 * `{ id, impact, help, helpUrl, targets }`.
 */
export async function checkA11y(page, { exclude, throwOnViolations = true } = {}) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) {
    await page.addScriptTag({ path: AXE_PATH });
  }
  const excluded = exclude === undefined ? [] : [exclude].flat();
  const raw = await page.evaluate(
    async ({ excluded, tags }) => {
      const context = excluded.length ? { exclude: excluded } : document;
      const result = await window.axe.run(context, {
        runOnly: { type: "tag", values: tags },
        resultTypes: ["violations"],
      });
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        targets: v.nodes.map((n) => n.target.map((t) => [t].flat().join(" >>> ")).join(" ")),
      }));
    },
    { excluded, tags: A11Y_TAGS },
  );
  if (raw.length && throwOnViolations) {
    const lines = raw.map(
      (v) => `${v.id} (${v.impact}): ${v.help}\n      ${v.helpUrl}\n      at ${v.targets.join("\n         ")}`,
    );
    throw Object.assign(
      new Error(`${raw.length} accessibility violation(s) on ${page.url()}:\n  - ${lines.join("\n  - ")}`),
      { violations: raw },
    );
  }
  return raw;
}

/**
 * Save a PNG of the page (the viewport; pass `{ fullPage: true }` for all of it) as
 * `<SCREENSHOT_DIR>/<name>.png` and resolve its path. Animations are stopped and the caret
 * hidden so the pictures are stable.
 */
export async function screenshot(page, name, options = {}) {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new Error(`screenshot name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-'`);
  }
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, animations: "disabled", caret: "hide", ...options });
  return file;
}

// ---------------------------------------------------------------------------------------------
// The REST API, for setting up what a test does not drive through the UI

/** Register an account (password default "correct horse"). Resolves `{ user, token }`. */
export function apiRegister(url, username, password = PASSWORD) {
  return apiCall(url, "POST", "/api/auth/register", null, { username, password });
}

/**
 * One REST call that must succeed (2xx); resolves the parsed JSON body. `token` may be null.
 * For a call that may fail, use apiRaw(url, method, path, token, body) -> { status, body }.
 */
export function api(url, token, method, p, body) {
  return apiCall(url, method, p, token, body);
}

// ---------------------------------------------------------------------------------------------
// Cleanup

/** Close every browser and stop every server started here; remove the temp data dirs. */
export async function closeAll() {
  await Promise.allSettled([...browsers].map((b) => b.close()));
  browsers.clear();
  await Promise.allSettled([...servers].map((s) => s.stop()));
  for (const dir of ownedDirs) rmSync(dir, { recursive: true, force: true });
  ownedDirs.clear();
}

after(closeAll);

// If the test process dies (a failure, a timeout, Ctrl-C), take the servers with it.
function killServers() {
  for (const s of servers) s.proc?.kill("SIGKILL");
  for (const dir of ownedDirs) rmSync(dir, { recursive: true, force: true });
}
process.once("exit", killServers);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  // Exiting runs the exit handlers: ours above, and Playwright's, which kills the browsers.
  process.once(signal, () => process.exit(128 + osConstants.signals[signal]));
}
