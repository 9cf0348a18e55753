// Accounts and signed links in headless Chromium (issue 6, acceptance
// point 4): first-run setup, an administrator who makes a user of one
// library, that user who sees and plays only it and whose playlist's links
// work without cookies, and a key rotation after which an old link works
// for the overlap window, then stops. cmd/mustserv/browser_auth_test.go runs
// it against a server started with accounts on, two libraries (Music and
// Videos, the repository's testdata/media) and auth.key_overlap = 3s:
//
//   node test/browser/auth.mjs BASE_URL SETUP_URL ARTIFACTS_DIR
//
// It prints one line per step, then on success one line
// "SECRETS {json}" with the passwords it typed, the session cookies it was
// given and the link tokens it used, which the Go test looks for in the
// server's log (they must not be there). Exit 0 when every check passed, 1
// with the failed check otherwise. Screenshots go to ARTIFACTS_DIR.
import { randomBytes } from 'node:crypto';
import { check, until, videoPlays, createHarness } from './harness.mjs';

const [base, setupURL, artifacts] = process.argv.slice(2);
if (!base || !setupURL || !artifacts) {
  console.error('usage: node auth.mjs BASE_URL SETUP_URL ARTIFACTS_DIR');
  process.exit(2);
}

// The key overlap the Go test configured, and the least time after the
// click on Rotate at which the old link may be refused. The server rotates
// after the click, so a correct server never refuses before overlapMs of
// it; the bound is lower still, to be generous, and catches a link that
// stops after a 2 s overlap (tried: refused at 2248 ms).
const overlapMs = 3000;
const earliestMs = 2500;

// Secrets the server must never log. Fresh each run, so that finding one
// in the log cannot be a coincidence of fixed strings.
const admin = { name: 'admin', password: `admin pw ${randomBytes(6).toString('hex')}` };
const tv = { name: 'tv', password: `tv pw ${randomBytes(6).toString('hex')}` };
// (Not the setup token: the server logs the setup link on purpose, for
// whoever reads its log to find.)
const secrets = { passwords: [admin.password, tv.password], sessions: [], tokens: [] };

const musicURL = '/stream/Music/Sine%20Band/First%20Album/01%20Sine%20%C3%84.mp3';
const clipURL = '/stream/Videos/clip.mp4';

// Known bugs of the UI the scenario tolerates while they happen exactly as
// described, and fails on once they stop (then delete the entry; see
// createHarness). None now: app.js threw on the login and setup pages (no
// player bar) until it checked for the bar.
const knownBugs = [];

const { step, watch, expectStatus, shot, run } =
  createHarness({ name: 'browser auth', artifacts, limitMs: 60_000, knownBugs, fullPage: true });

// settled waits for the page at pathname with <main> not being swapped.
async function settled(page, pathname, what) {
  await until(page, `${what}: the page is not ${pathname}`,
    (p) => location.pathname === p && !document.querySelector('main[aria-busy=true]'), pathname,
    { state: () => location.href });
}

// signedInAs checks the name in the header.
async function signedInAs(page, name) {
  await until(page, `the header does not show ${name} signed in`,
    (n) => document.querySelector('[data-testid=user-name]')?.textContent.trim() === n, name,
    { state: () => document.querySelector('[data-testid=user-name]')?.textContent ?? null });
}

// remember keeps the session cookie the browser now holds, for the log check.
async function remember(context) {
  const c = (await context.cookies(base)).find((c) => c.name === 'mustserv_session');
  check(c && c.value, `no session cookie after signing in; cookies: ${JSON.stringify(await context.cookies(base))}`);
  check(c.httpOnly, 'the session cookie is readable by scripts (not HttpOnly)');
  if (!secrets.sessions.includes(c.value)) secrets.sessions.push(c.value);
}

// signIn fills the login form the page shows and waits for pathname.
async function signIn(page, who, pathname) {
  await page.locator('[data-testid=login-form]').waitFor();
  await page.locator('[data-testid=login-name]').fill(who.name);
  await page.locator('[data-testid=login-password]').fill(who.password);
  await page.locator('[data-testid=login-submit]').click();
  await settled(page, pathname, `signing in as ${who.name}`);
  await signedInAs(page, who.name);
  await remember(page.context());
}

// signOut presses Sign out and waits for the login page.
async function signOut(page) {
  await page.locator('[data-testid=logout]').click();
  await settled(page, '/login', 'Sign out');
  check(await page.locator('[data-testid=user-name]').count() === 0, 'the login page after Sign out still shows a user');
}

// homeLibraries are the libraries the home page links to.
async function homeLibraries(page) {
  return page.locator('main a[href^="/browse/"]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
}

// playlistLinks downloads a folder playlist with the browser's cookies
// and returns its links.
async function playlistLinks(page, url) {
  const resp = await page.request.get(base + url);
  check(resp.status() === 200, `GET ${url} with the browser's cookies answered ${resp.status()}`);
  const text = await resp.text();
  check(text.startsWith('#EXTM3U'), `${url} does not start with #EXTM3U:\n${text}`);
  const links = text.split(/\r?\n/).filter((l) => l && !l.startsWith('#'));
  check(links.length > 0, `${url} has no links:\n${text}`);
  for (const l of links) {
    const u = new URL(l);
    check(u.origin === base && u.searchParams.get('t'), `the playlist's link ${l} is not a signed link to ${base}`);
    if (!secrets.tokens.includes(u.searchParams.get('t'))) secrets.tokens.push(u.searchParams.get('t'));
  }
  return links;
}

// fetchLink fetches url as a player would, with no cookies (Node's fetch
// shares nothing with the browser): the status, the Content-Type and how
// many bytes came before it hung up. A Range keeps the paced body short.
async function fetchLink(url, range) {
  const resp = await fetch(url, { headers: range ? { Range: range } : {}, signal: AbortSignal.timeout(5000) });
  const reader = resp.body.getReader();
  const first = await reader.read();
  await reader.cancel();
  return { status: resp.status, type: resp.headers.get('content-type') ?? '', bytes: first.value?.length ?? 0 };
}

// tokenKey is the signing key's id in a token "v1.<key id>.<claims>.<mac>".
function tokenKey(link) {
  return new URL(link).searchParams.get('t').split('.')[1];
}

const ok = await run(scenario);
if (ok) console.log(`SECRETS ${JSON.stringify(secrets)}`);
process.exit(ok ? 0 : 1);

async function scenario(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  watch(page);

  await step('setup: the printed link makes the first administrator', async () => {
    const resp = await page.goto(setupURL);
    check(resp.status() === 200, `GET the setup link answered ${resp.status()}`);
    await page.locator('[data-testid=setup-form]').waitFor();
    await page.locator('[data-testid=login-name]').fill(admin.name);
    await page.locator('[data-testid=login-password]').fill(admin.password);
    await page.locator('[data-testid=login-password2]').fill(admin.password);
    await shot(page, 'auth-setup');
    await page.locator('[data-testid=login-submit]').click();
    await settled(page, '/', 'creating the administrator');
    await signedInAs(page, admin.name);
    await remember(context);
    const libs = await homeLibraries(page);
    check(libs.includes('/browse/Music/') && libs.includes('/browse/Videos/'),
      `the administrator's home page links to ${JSON.stringify(libs)}, want Music and Videos`);
    check(await page.locator('[data-testid=nav-admin]').count() === 1, 'the administrator has no Admin link');
    // The link works once.
    const again = await page.request.get(setupURL);
    check(again.status() === 404, `the setup link answered ${again.status()} after use, want 404`);
    // The index is complete before anyone browses: the first scan is done.
    let scan;
    for (let i = 0; i < 100; i++) {
      if (i) await page.waitForTimeout(100); // a polling interval, bounded by the loop
      scan = await (await page.request.get(base + '/api/scan')).json();
      if (!scan.running && scan.finished && !scan.finished.startsWith('0001-')) break;
    }
    check(!scan.running && scan.finished && !scan.finished.startsWith('0001-'), `the first scan did not finish within 10 s: ${JSON.stringify(scan)}`);
    // What tv will be refused exists: the administrator gets it.
    const music = await page.request.get(base + musicURL, { headers: { Range: 'bytes=0-99' } });
    check(music.status() === 206, `the administrator's GET ${musicURL} answered ${music.status()}, want 206`);
  });

  await step('admin: create user tv with the library Videos only', async () => {
    await page.locator('[data-testid=nav-admin]').click();
    await settled(page, '/admin', 'the Admin link');
    await page.locator('main nav a', { hasText: 'Users' }).click();
    await settled(page, '/admin/users', 'the Users link');
    const form = page.locator('form[data-testid=user-create]');
    await form.locator('input[name=name]').fill(tv.name);
    await form.locator('input[name=password]').fill(tv.password);
    await form.locator('input[name=password2]').fill(tv.password);
    await form.locator('[data-testid=role]').selectOption('user');
    const boxes = await form.locator('input[name=library]').evaluateAll((bs) => bs.map((b) => [b.value, b.checked]));
    check(JSON.stringify(boxes.map((b) => b[0]).sort()) === '["Music","Videos"]', `the form offers the libraries ${JSON.stringify(boxes)}`);
    await form.locator('input[name=library][value=Videos]').check();
    check(!(await form.locator('input[name=library][value=Music]').isChecked()), 'Music is ticked for the new user');
    await form.locator('button[type=submit]').click();
    await until(page, 'no flash "User \"tv\" created."',
      () => document.querySelector('[data-testid=flash]')?.textContent.trim() === 'User "tv" created.', undefined,
      { state: () => [location.href, document.querySelector('[data-testid=flash], [data-testid=flash-error]')?.textContent] });
    const row = page.locator('[data-testid=user-row][data-user=tv]');
    check(await row.count() === 1, 'tv is not in the list of users');
    const cells = await row.locator('td').allTextContents();
    check(cells[1] === 'user', `tv's role is listed as "${cells[1]}", want user`);
    check(cells[2].includes('Videos') && !cells[2].includes('Music'), `tv's libraries are listed as "${cells[2]}", want Videos only`);
    await shot(page, 'auth-admin-users');
  });

  await step('tv: signs in and sees only Videos', async () => {
    await signOut(page);
    await signIn(page, tv, '/');
    const libs = await homeLibraries(page);
    check(JSON.stringify(libs) === '["/browse/Videos/"]', `tv's home page links to ${JSON.stringify(libs)}, want /browse/Videos/ only`);
    const text = await page.locator('main').textContent();
    check(!text.includes('Music'), `tv's home page mentions Music:\n${text}`);
    check(await page.locator('[data-testid=nav-admin]').count() === 0, 'tv has an Admin link');
    await shot(page, 'auth-tv-home');
  });

  await step('tv: plays a video of Videos', async () => {
    await page.locator('main a[href="/browse/Videos/"]').first().click();
    await settled(page, '/browse/Videos/', 'opening Videos');
    await page.locator(`main [data-track][data-url="${clipURL}"] [data-testid=play]`).click();
    await until(page, 'Play on clip.mp4 did not open its player view',
      () => location.pathname === '/watch/Videos/clip.mp4' && !!document.querySelector('main [data-testid=video]'));
    await videoPlays(page); // presses play: autoplay starts late on a paced stream
    await page.locator('main [data-testid=video]').evaluate((v) => v.pause());
  });

  await step('tv: Music answers as if it did not exist', async () => {
    // The same page as for a library that does not exist (a plain
    // "Not Found"), not the login page.
    const answers = [];
    // A page without <link rel=icon> makes Chromium try /favicon.ico,
    // which the server does not have.
    expectStatus(base + '/favicon.ico', 404);
    for (const url of ['/browse/Music/', '/browse/Nonesuch/']) {
      expectStatus(base + url, 404);
      const resp = await page.goto(base + url);
      answers.push({ url: new URL(page.url()).pathname, status: resp.status(), text: (await page.locator('body').textContent()).trim() });
    }
    check(answers[0].status === 404 && answers[0].url === '/browse/Music/',
      `tv's visit to /browse/Music/ answered ${JSON.stringify(answers[0])}, want 404`);
    check(answers[0].text === answers[1].text, `tv's /browse/Music/ says ${JSON.stringify(answers[0].text)}, a missing library ${JSON.stringify(answers[1].text)}`);
    for (const url of [musicURL, '/playlist/Music.m3u8', '/browse/Music/Sine%20Band/']) {
      const r = await page.request.get(base + url);
      check(r.status() === 404, `tv's GET ${url} answered ${r.status()}, want 404`);
    }
  });

  let oldLink;
  await step("tv: the Videos playlist's links play without cookies", async () => {
    const links = await playlistLinks(page, '/playlist/Videos.m3u8');
    for (const l of links) {
      check(new URL(l).pathname.startsWith('/stream/Videos/'), `tv's Videos playlist links to ${l}`);
    }
    oldLink = links.find((l) => new URL(l).pathname === clipURL);
    check(oldLink, `tv's Videos playlist has no link to ${clipURL}: ${JSON.stringify(links)}`);
    const got = await fetchLink(oldLink);
    check(got.status === 200 && got.bytes > 0 && got.type.startsWith('video/'),
      `the signed link without cookies answered ${JSON.stringify(got)}, want 200 with video bytes`);
    // The signature is what lets it in.
    const bare = await fetchLink(base + clipURL);
    check(bare.status === 401, `${clipURL} without cookies or signature answered ${bare.status}, want 401`);
  });

  await step('admin: rotates the key; the old link works for the overlap, then stops', async () => {
    await page.goto(base + '/'); // from the plain 404 page, which has no header
    await signOut(page);
    await signIn(page, admin, '/');
    await page.goto(base + '/admin/security');
    const overlap = await page.locator('main li strong').first().textContent();
    check(overlap === '3s', `the security page states an overlap of "${overlap}", want 3s`);
    await shot(page, 'auth-security');
    const clicked = Date.now(); // the rotation happens after this
    await page.locator('[data-testid=rotate-key]').click();
    await until(page, 'no flash "A new signing key is in use."',
      () => document.querySelector('[data-testid=flash]')?.textContent.trim() === 'A new signing key is in use.');
    const rotated = Date.now(); // and before this
    const soon = await fetchLink(oldLink);
    check(soon.status === 200 && soon.bytes > 0,
      `the old link right after the rotation (${Date.now() - rotated} ms) answered ${JSON.stringify(soon)}, want 200`);
    // Poll, bounded, until it stops working.
    let lastOK = rotated, stopped = 0, last;
    for (let i = 0; i < 40 && !stopped; i++) {
      await page.waitForTimeout(250); // a polling interval, bounded by the loop
      last = await fetchLink(oldLink, 'bytes=0-1023');
      if (last.status === 206) lastOK = Date.now();
      else if (last.status === 403) stopped = Date.now();
      else check(false, `the old link answered ${JSON.stringify(last)} ${Date.now() - rotated} ms after the rotation, want 206 or 403`);
    }
    check(stopped, `the old link still works ${Date.now() - rotated} ms after the rotation (overlap ${overlapMs} ms): ${JSON.stringify(last)}`);
    check(stopped - clicked >= earliestMs,
      `the old link was refused ${stopped - clicked} ms after the click on Rotate, before the ${overlapMs} ms overlap had passed (last worked at ${lastOK - clicked} ms)`);
    console.log(`   the old link last worked ${lastOK - clicked} ms and was refused ${stopped - clicked} ms after the click on Rotate (whose page showed ${rotated - clicked} ms after it)`);
    // The session the browser held was signed by the old key too.
    await page.goto(base + '/admin/security');
    await settled(page, '/login', 'the administrator after the overlap');
  });

  await step("a playlist downloaded after the rotation has links that work", async () => {
    await signIn(page, admin, '/admin/security');
    const links = await playlistLinks(page, '/playlist/Videos.m3u8');
    const fresh = links.find((l) => new URL(l).pathname === clipURL);
    check(fresh, `the Videos playlist has no link to ${clipURL}: ${JSON.stringify(links)}`);
    check(tokenKey(fresh) !== tokenKey(oldLink), `the new link is signed with the old key ${tokenKey(oldLink)}`);
    const got = await fetchLink(fresh);
    check(got.status === 200 && got.bytes > 0 && got.type.startsWith('video/'),
      `the new link without cookies answered ${JSON.stringify(got)}, want 200 with video bytes`);
    const old = await fetchLink(oldLink);
    check(old.status === 403, `the old link answered ${old.status} after the new one, want 403`);
  });

  await context.close();
}
