// What the browser scenarios (scenario.mjs, auth.mjs) share: checks that
// fail a run with a message, named steps, polling a page, a watch on what
// the pages report as broken, screenshots, the run itself (Chromium, an
// overall time limit, the summary line), and videoPlays, which both need.
// What a scenario does, and its own helpers, stay in its file.
//
//   import { check, until, createHarness } from './harness.mjs';
//   const { step, watch, expectStatus, shot, run } =
//     createHarness({ name: 'browser', artifacts, limitMs: 100_000 });
//   const ok = await run(async (browser) => { ... await step('...', async () => { ... }) ... });
//   process.exit(ok ? 0 : 1);
import { chromium } from 'playwright-core';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

// A failed check: run prints its message alone, any other error with its
// stack.
class CheckError extends Error {}

// check fails the scenario with msg unless ok.
export function check(ok, msg) {
  if (!ok) throw new CheckError(msg);
}

// until polls pred in the page until it is true and fails with msg after
// timeout ms, showing what state (a page function too) then returns.
export async function until(page, msg, pred, arg, { state = pred, timeout = 10_000 } = {}) {
  try {
    await page.waitForFunction(pred, arg, { timeout, polling: 100 });
  } catch (err) {
    if (!/Timeout/.test(String(err))) throw err;
    let last;
    try { last = await page.evaluate(state, arg); } catch (e) { last = String(e); }
    throw new CheckError(`${msg} (after ${timeout} ms; ${JSON.stringify(last)})`);
  }
}

// videoPlays presses play on the video of the page's player view and waits
// until it plays past 1 s with a picture. The page has the autoplay
// attribute, but Chromium starts an autoplay at HAVE_ENOUGH_DATA only,
// which a paced stream reaches several seconds late (8 s or more here;
// unpaced at once); play(), as the control does, starts at
// HAVE_FUTURE_DATA.
export async function videoPlays(page) {
  await page.locator('main [data-testid=video]').evaluate((v) => v.play());
  await until(page, 'the video does not play past 1 s with a picture', () => {
    const v = document.querySelector('main [data-testid=video]');
    return !v.paused && v.currentTime > 1 && v.videoWidth > 0;
  }, undefined, { state: () => {
    const v = document.querySelector('main [data-testid=video]');
    return { t: v.currentTime, width: v.videoWidth, paused: v.paused, readyState: v.readyState, err: v.error?.message };
  } });
}

// createHarness keeps one run's state: the step under way, how many passed,
// what the pages reported. name starts the summary line; artifacts is the
// folder for screenshots (fullPage: whole pages rather than the window);
// limitMs bounds the whole run, so that a hung page fails instead of
// hanging go test.
//
// knownBugs are bugs of the UI the scenario runs into and tolerates while
// they happen exactly as described, each { what, match }: an uncaught
// exception whose text ("uncaught exception on URL: stack") the RegExp
// match matches is not a problem. The run fails when one no longer
// happens, so that the fix deletes its entry.
export function createHarness({ name, artifacts, limitMs, knownBugs = [], fullPage = false }) {
  let current = 'setup';
  let passed = 0;
  const problems = []; // what the pages reported as broken (watch)
  const expected = new Map(); // URL -> the error status a step asked for
  const seen = new Map(knownBugs.map((b) => [b, 0]));

  // step runs one named part of the scenario and logs it. A step passes
  // when its checks pass and the pages reported no problem meanwhile.
  async function step(stepName, fn) {
    current = stepName;
    const t0 = Date.now();
    await fn();
    check(problems.length === 0, `the page reported problems:\n  ${problems.join('\n  ')}`);
    passed++;
    console.log(`ok ${passed} - ${stepName} (${Date.now() - t0} ms)`);
  }

  // watch records in problems what a person would call broken: console
  // errors, uncaught exceptions (but for knownBugs), CSP violations and HTTP
  // errors (but for the statuses a step expects: expectStatus).
  function watch(page) {
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const at = msg.location().url;
      // Chromium logs "Failed to load resource" for an error answer too.
      if (at && expected.has(at) && /status of (\d+)/.exec(msg.text())?.[1] === String(expected.get(at))) return;
      problems.push(`console error: ${msg.text()}${at ? ` (${at})` : ''}`);
    });
    page.on('pageerror', (err) => {
      const what = `uncaught exception on ${page.url()}: ${err.stack ?? err.message}`;
      const known = knownBugs.find((b) => b.match.test(what));
      if (known) seen.set(known, seen.get(known) + 1);
      else problems.push(what);
    });
    page.on('response', (resp) => {
      if (resp.status() < 400 || expected.get(resp.url()) === resp.status()) return;
      problems.push(`HTTP ${resp.status()} for ${resp.request().method()} ${resp.url()}`);
    });
    // A violation is also logged to the console; this names the directive.
    page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'}`);
      });
    });
  }

  // expectStatus tells watch that the page will get status for url on
  // purpose.
  function expectStatus(url, status) {
    expected.set(url, status);
  }

  async function shot(page, shotName) {
    await page.screenshot({ path: path.join(artifacts, `${shotName}.png`), fullPage });
  }

  // run launches Chromium, runs scenario(browser), closes Chromium, checks
  // that every known bug happened and prints the summary line. It reports
  // whether everything passed; a failure has been printed.
  async function run(scenario) {
    setTimeout(() => {
      console.log(`FAIL [${current}]: the scenario did not finish within ${limitMs / 1000} s`);
      process.exit(1);
    }, limitMs).unref();
    await mkdir(artifacts, { recursive: true });
    const browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      // As root Chromium runs only without its sandbox; media may play
      // without a click, as after a person's first one.
      args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'],
    });

    let failed = false;
    try {
      await scenario(browser);
    } catch (err) {
      failed = true;
      console.log(`FAIL [${current}]: ${err instanceof CheckError ? err.message : err.stack ?? err}`);
    } finally {
      await browser.close().catch(() => {});
    }
    for (const b of knownBugs) {
      if (failed) break;
      if (seen.get(b)) {
        console.log(`KNOWN BUG (seen ${seen.get(b)} times, tolerated): ${b.what}`);
      } else {
        failed = true;
        console.log(`FAIL [known bugs]: "${b.what}" did not happen: if it is fixed, delete its entry of knownBugs in ${path.basename(process.argv[1])}`);
      }
    }
    console.log(`${name}: ${passed} steps passed, ${failed ? 1 : 0} failed; screenshots in ${artifacts}`);
    return !failed;
  }

  return { step, watch, expectStatus, shot, run };
}
