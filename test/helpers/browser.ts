/**
 * A real headless Chromium for the pages' tests (the storefront, the
 * operators' dashboard): Debian's `chromium`, which `scripts/services.sh
 * browser` installs, driven by puppeteer-core. Nothing is stubbed: the page
 * talks to the api a test booted, over HTTP, WebSocket and SSE.
 *
 * Each page records what would show up red in the browser's console
 * (console errors, uncaught exceptions, failed requests and 4xx/5xx
 * answers), so a test can say "no console error" and mean it. A test that
 * expects a refusal (a 409 the page shows) lists it in `allowStatus`.
 */
import { existsSync } from 'node:fs';
import type { Test } from 'tap';
import puppeteer, { type Browser, type HTTPResponse, type Page } from 'puppeteer-core';

/** `STAMPEDE_CHROMIUM` names another Chromium or Chrome binary (e.g. on a machine that is not Debian). */
export const CHROMIUM_PATH = process.env.STAMPEDE_CHROMIUM ?? '/usr/bin/chromium';

export interface PageProblem {
  kind: 'console' | 'pageerror' | 'requestfailed' | 'http';
  text: string;
}

export interface OpenedPage {
  page: Page;
  /** Everything that went wrong on the page so far, in order. */
  problems: PageProblem[];
  /** Every console message of the page (all levels), for a failing test's diagnostics. */
  console: string[];
}

export interface OpenOptions {
  /** HTTP statuses at or above 400 the test expects (a refusal the page shows); others are problems. */
  allowStatus?: number[];
  viewport?: { width: number; height: number };
}

/**
 * A browser, closed when `t` ends: launch one per test file (with the
 * file's root `t`) and open pages in it. Each `openPage` gets a context of
 * its own (its own storage and cookies), so two pages are two visitors
 * with nothing shared.
 */
export async function launchBrowser(t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}: run 'bash scripts/services.sh browser' (as root, installs Debian's chromium) or set STAMPEDE_CHROMIUM`);
  }
  const args = ['--headless=new', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'];
  // Chromium refuses to run as root with its sandbox on; CI containers run as root.
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  const browser = await puppeteer.launch({ executablePath: CHROMIUM_PATH, headless: true, args, protocolTimeout: 60_000 });
  t.teardown(() => browser.close());
  return browser;
}

/** Opens `url` in a fresh context of `browser`, recording its problems; the context closes when `t` ends. */
export async function openPage(t: Test, browser: Browser, url: string, o: OpenOptions = {}): Promise<OpenedPage> {
  const context = await browser.createBrowserContext();
  t.teardown(() => context.close().catch(() => {}));
  const page = await context.newPage();
  await page.setViewport(o.viewport ?? { width: 1200, height: 900 });
  const allowed = new Set(o.allowStatus ?? []);
  const opened: OpenedPage = { page, problems: [], console: [] };
  page.on('console', (m) => {
    const line = `${m.type()}: ${m.text()}`;
    opened.console.push(line);
    // A failed request also logs "Failed to load resource"; it is recorded once, as the request.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) opened.problems.push({ kind: 'console', text: m.text() });
  });
  page.on('pageerror', (err) => opened.problems.push({ kind: 'pageerror', text: err instanceof Error ? (err.stack ?? err.message) : String(err) }));
  page.on('requestfailed', (r) => {
    const reason = r.failure()?.errorText ?? 'failed';
    // A stream the page closes itself (SSE on a buyer switch, the page unloading) is aborted, not failed.
    if (reason === 'net::ERR_ABORTED') return;
    opened.problems.push({ kind: 'requestfailed', text: `${r.method()} ${r.url()}: ${reason}` });
  });
  page.on('response', (r: HTTPResponse) => {
    if (r.status() >= 400 && !allowed.has(r.status())) opened.problems.push({ kind: 'http', text: `${r.request().method()} ${r.url()}: ${r.status()}` });
  });
  await page.goto(url, { waitUntil: 'load' });
  return opened;
}

/**
 * Waits until the text of `selector` satisfies `test`, and returns it. On
 * time-out the error says what the element last read, not only that it
 * did not match.
 */
export async function waitForText(page: Page, selector: string, test: (text: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '(no such element)';
  for (;;) {
    last = (await page.$eval(selector, (el) => (el as HTMLElement).innerText ?? el.textContent ?? '').catch(() => '(no such element)')) as string;
    if (test(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${selector} reads ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
