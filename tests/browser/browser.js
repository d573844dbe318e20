// Chromium for the browser tests: Debian's /usr/bin/chromium driven by
// playwright-core (which never downloads a browser), headless, with a fresh
// profile per launch; and pages that record every console error.
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CL_CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

export function launch() {
  // launch() gives each browser a fresh, temporary user-data-dir.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

/** A page in its own context; `page.errors` collects console errors and uncaught exceptions. */
export async function openPage(browser, url, { viewport = { width: 1280, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.errors = [];
  page.on("console", (message) => {
    if (message.type() === "error") page.errors.push(`console: ${message.text()} ${JSON.stringify(message.location())}`);
  });
  page.on("pageerror", (error) => page.errors.push(`uncaught: ${error.stack || error.message}`));
  await page.goto(url);
  return page;
}
