// MuStServ's web UI in headless Chromium: what a person does with it,
// checked step by step. cmd/mustserv/browser_test.go runs it against a
// server whose library it made and scanned:
//
//   node test/browser/scenario.mjs BASE_URL ARTIFACTS_DIR
//
// The library: Music/Sine Band/First Album/{01 Sine Ä.mp3, 02 Tone.ogg},
// Music/Sine Band/Second Album/01 Déjà Vu.wav (60 s, 10 MB: large enough
// that a seek needs a new request), Music/Lossless/tone.flac and
// Videos/{clip.mp4, clip.webm}.
//
// It prints one line per step and exits 0 when every check passed, or 1
// with the failed check. Screenshots at phone and desktop sizes go to
// ARTIFACTS_DIR. Elements are found by the data-testid hooks of
// docs/api.md ("UI test hooks") and by the links a person would click.
import { readFile } from 'node:fs/promises';
import { check, until, videoPlays, createHarness } from './harness.mjs';

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) {
  console.error('usage: node scenario.mjs BASE_URL ARTIFACTS_DIR');
  process.exit(2);
}

const { step, watch, shot, run } = createHarness({ name: 'browser', artifacts, limitMs: 100_000 });

const sineURL = '/stream/Music/Sine%20Band/First%20Album/01%20Sine%20%C3%84.mp3';
const toneURL = '/stream/Music/Sine%20Band/First%20Album/02%20Tone.ogg';
const dejaURL = '/stream/Music/Sine%20Band/Second%20Album/01%20D%C3%A9j%C3%A0%20Vu.wav';
const clipURL = '/stream/Videos/clip.mp4';

// The page's <audio> as the test sees it.
function audioState(page) {
  return page.evaluate(() => {
    const a = document.querySelector('[data-testid=audio]');
    return a && { src: a.currentSrc || a.src, paused: a.paused, t: a.currentTime, err: a.error && a.error.message };
  });
}

// playsOn waits until the player's <audio> plays url past at seconds.
async function playsOn(page, url, at) {
  await until(page, `the player's audio does not play ${url} past ${at} s`, ([url, at]) => {
    const a = document.querySelector('[data-testid=audio]');
    return a && new URL(a.currentSrc || a.src, location.href).pathname === url && !a.paused && a.currentTime > at;
  }, [url, at], { state: () => {
    const a = document.querySelector('[data-testid=audio]');
    return a && { src: a.currentSrc || a.src, paused: a.paused, t: a.currentTime, readyState: a.readyState, err: a.error?.message };
  } });
}

async function nowPlaying(page, title) {
  await until(page, `the now-playing line does not say "${title}"`,
    (title) => document.querySelector('[data-testid=now-playing]')?.textContent.trim() === title, title);
}

// A page that is swapped in by the UI, not loaded: a mark set on window
// survives only if the document was not reloaded.
async function markDocument(page) {
  await page.evaluate(() => { window.__mustservMark = 'same document'; });
}
async function sameDocument(page, what) {
  const mark = await page.evaluate(() => window.__mustservMark);
  check(mark === 'same document', `${what} reloaded the page instead of swapping <main>`);
}

// clickLink clicks the link in <main> whose text is text and waits for the
// page at pathname.
async function clickLink(page, text, pathname) {
  const link = page.locator('main a', { hasText: text }).first();
  await link.click();
  await until(page, `clicking "${text}" did not show ${pathname}`,
    (p) => location.pathname === p && !document.querySelector('main[aria-busy=true]'), pathname);
}

// noSideScroll checks that a page fits a phone's width.
async function noSideScroll(page, what) {
  const w = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(w[0] <= w[1], `${what} is wider than the screen: ${w[0]} px in a ${w[1]} px window`);
}

const ok = await run(async (browser) => {
  await desktop(browser);
  await phone(browser);
});
process.exit(ok ? 0 : 1);

async function desktop(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  watch(page);
  // Every request of a /stream/ URL: path, range and how it ended.
  const streams = [];
  const byReq = new Map();
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/stream/')) return;
    const s = { path: decodeURIComponent(u.pathname), range: r.headers().range ?? '', state: 'open' };
    streams.push(s);
    byReq.set(r, s);
  });
  page.on('requestfinished', (r) => { if (byReq.has(r)) byReq.get(r).state = 'finished'; });
  page.on('requestfailed', (r) => { if (byReq.has(r)) byReq.get(r).state = r.failure()?.errorText; });

  await step('desktop: the home page lists the libraries', async () => {
    const resp = await page.goto(base + '/');
    check(resp.ok(), `GET / answered ${resp.status()}`);
    for (const name of ['Music', 'Videos']) {
      check(await page.locator(`main a[href="/browse/${name}/"]`).count() > 0, `the home page has no link to /browse/${name}/`);
    }
    await until(page, 'the player bar is not hidden before anything plays', () => document.querySelector('[data-testid=player]')?.hidden === true);
    await shot(page, 'desktop-home');
    await markDocument(page);
  });

  await step('desktop: browse to a folder by its links', async () => {
    await clickLink(page, 'Music', '/browse/Music/');
    await clickLink(page, 'Sine Band', '/browse/Music/Sine%20Band/');
    await clickLink(page, 'First Album', '/browse/Music/Sine%20Band/First%20Album/');
    await sameDocument(page, 'following a folder link');
    const titles = await page.locator('main [data-track]').evaluateAll((rows) => rows.map((r) => r.dataset.title));
    check(titles.includes('Sine Ä') && titles.includes('Tone'), `the folder lists tracks ${JSON.stringify(titles)}, want Sine Ä and Tone`);
    check((await page.title()).includes('First Album'), `the title is "${await page.title()}"`);
    await shot(page, 'desktop-folder');
  });

  await step('desktop: Copy link copies the absolute stream URL', async () => {
    await page.locator('main [data-track][data-title="Tone"] [data-testid=copy-link]').click();
    // The copy is asynchronous: poll the clipboard from here (a page
    // predicate of waitForFunction must not be async).
    let got;
    for (let i = 0; i < 50 && got !== base + toneURL; i++) {
      if (i) await page.waitForTimeout(100);
      got = await page.evaluate(() => navigator.clipboard.readText());
    }
    check(got === base + toneURL, `the clipboard holds "${got}" after Copy link, want ${base + toneURL}`);
  });

  await step('desktop: play an audio file', async () => {
    await page.locator('main [data-track][data-title="Sine Ä"] [data-testid=play]').click();
    await until(page, 'the player bar is hidden after Play', () => !document.querySelector('[data-testid=player]').hidden);
    await nowPlaying(page, 'Sine Ä');
    await playsOn(page, sineURL, 1);
  });

  await step('desktop: audio keeps playing while browsing', async () => {
    const before = await audioState(page);
    await clickLink(page, 'Sine Band', '/browse/Music/Sine%20Band/');
    await clickLink(page, 'Second Album', '/browse/Music/Sine%20Band/Second%20Album/');
    await sameDocument(page, 'browsing while audio plays');
    await nowPlaying(page, 'Sine Ä');
    await playsOn(page, sineURL, before.t + 0.5);
  });

  await step('desktop: seek with the slider asks for the rest with a Range request', async () => {
    await page.locator('main [data-track][data-title="Déjà Vu"] [data-testid=play]').click();
    await nowPlaying(page, 'Déjà Vu');
    await playsOn(page, dejaURL, 0.5);
    const seeks = page.waitForRequest((r) => {
      const m = /^bytes=(\d+)-$/.exec(r.headers().range ?? '');
      return new URL(r.url()).pathname === dejaURL && m && Number(m[1]) > 0;
    }, { timeout: 10_000 }).catch(() => null);
    // fill sets a range input's value and fires input and change, as a
    // drag that ends at 50 s does.
    await page.locator('[data-testid=seek]').fill('50');
    const req = await seeks;
    check(req, `no Range: bytes=N- (N > 0) request of ${dejaURL} after seeking to 50 s; stream requests: ${JSON.stringify(streams)}`);
    await playsOn(page, dejaURL, 50.5);
    const slider = Number(await page.locator('[data-testid=seek]').inputValue());
    check(slider >= 50, `the seek slider shows ${slider} s after seeking to 50 s`);
  });

  await step('desktop: queue two tracks and skip to them', async () => {
    await clickLink(page, 'Sine Band', '/browse/Music/Sine%20Band/');
    await clickLink(page, 'First Album', '/browse/Music/Sine%20Band/First%20Album/');
    for (const title of ['Sine Ä', 'Tone']) {
      await page.locator(`main [data-track][data-title="${title}"] [data-testid=queue-add]`).click();
    }
    await nowPlaying(page, 'Déjà Vu'); // queueing does not interrupt
    const queued = () => [...document.querySelectorAll('[data-testid=queue] [data-testid=queue-item]')].map((b) => b.textContent);
    await until(page, 'the queue does not hold Déjà Vu, Sine Ä, Tone', (want) => {
      const items = [...document.querySelectorAll('[data-testid=queue] [data-testid=queue-item]')].map((b) => b.textContent);
      return items.length === want.length && want.every((w, i) => items[i].startsWith(w));
    }, ['Déjà Vu', 'Sine Ä', 'Tone'], { state: queued });
    await page.locator('[data-testid=next]').click();
    await nowPlaying(page, 'Sine Ä');
    await playsOn(page, sineURL, 0.2);
    await page.locator('[data-testid=next]').click();
    await nowPlaying(page, 'Tone');
    await playsOn(page, toneURL, 0.2);
    check(await page.locator('[data-testid=next]').isDisabled(), 'Next is enabled on the last track of the queue');
    await page.locator('[data-testid=queue-toggle]').click();
    await until(page, 'the queue panel does not open', () => !document.querySelector('[data-testid=queue]').hidden);
    const cur = await page.locator('[data-testid=queue] li[aria-current=true]').textContent();
    check(cur.startsWith('Tone'), `the queue marks "${cur}" as playing, want Tone`);
    await shot(page, 'desktop-player-queue');
    await page.locator('[data-testid=queue-toggle]').click();
  });

  await step('desktop: the space bar pauses and plays', async () => {
    // The keys go to the page, not to a button that has the focus (which
    // the space bar would press).
    await page.locator('main h1').click();
    await page.keyboard.press('Space');
    await until(page, 'the audio did not pause on Space', () => document.querySelector('[data-testid=audio]').paused);
    await until(page, 'the play/pause button does not say Play while paused',
      () => document.querySelector('[data-testid=play-pause]').getAttribute('aria-label') === 'Play');
    await page.keyboard.press('Space');
    const st = await audioState(page);
    await playsOn(page, toneURL, st.t + 0.3);
  });

  await step('desktop: search as you type', async () => {
    const box = page.locator('[data-testid=search]');
    await box.click();
    await box.pressSequentially('sin', { delay: 60 });
    await until(page, 'no result for "sin" without pressing Enter',
      () => [...document.querySelectorAll('[data-testid=result]')].some((r) => r.dataset.title === 'Sine Ä'));
    check(new URL(page.url()).pathname === '/search', `the address is ${page.url()} while searching`);
    await sameDocument(page, 'searching');
    await shot(page, 'desktop-search');
    // A title's letters without their accents find it, and only it.
    await box.fill('');
    await box.pressSequentially('deja', { delay: 60 });
    await until(page, 'typing "deja" does not find Déjà Vu alone', () => {
      const r = [...document.querySelectorAll('[data-testid=result]')].map((r) => r.dataset.title);
      return r.length === 1 && r[0] === 'Déjà Vu';
    });
    await playsOn(page, toneURL, 0); // the search did not stop the music
  });

  await step('desktop: the album view', async () => {
    await page.locator('header a', { hasText: 'Albums' }).click();
    await until(page, 'the Albums link did not show /albums', () => location.pathname === '/albums');
    await page.locator('main a', { hasText: 'First Album' }).first().click();
    await until(page, 'the album page of First Album is not shown',
      () => location.pathname.startsWith('/albums/') && document.querySelector('main h1')?.textContent === 'First Album');
    const titles = await page.locator('main [data-track]').evaluateAll((rows) => rows.map((r) => r.dataset.title));
    check(titles.includes('Sine Ä'), `the album lists ${JSON.stringify(titles)}, want Sine Ä`);
    await shot(page, 'desktop-album');
  });

  await step("desktop: the folder's M3U8 lists links that play", async () => {
    await page.goto(base + '/browse/Music/Sine%20Band/First%20Album/');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('main [data-testid=playlist-m3u8]').click(),
    ]);
    check(/\.m3u8$/.test(download.suggestedFilename()), `the playlist downloads as "${download.suggestedFilename()}"`);
    const text = await readFile(await download.path(), 'utf8');
    check(text.startsWith('#EXTM3U'), `the playlist does not start with #EXTM3U:\n${text}`);
    const urls = text.split(/\r?\n/).filter((l) => l && !l.startsWith('#'));
    const paths = urls.map((u) => { try { return new URL(u).pathname; } catch { return u; } });
    check(paths.includes(sineURL) && paths.includes(toneURL), `the playlist lists ${JSON.stringify(urls)}, want Sine Ä and Tone`);
    for (const u of urls) {
      check(u.startsWith(base + '/'), `the playlist's link ${u} is not an absolute link to ${base}`);
      // As a player does: the first bytes, then hang up (the rest is
      // paced to the file's bitrate).
      const resp = await fetch(u);
      const reader = resp.body.getReader();
      const first = await reader.read();
      await reader.cancel();
      check(resp.status === 200 || resp.status === 206, `${u} answered ${resp.status}`);
      check(first.value?.length > 0, `${u} answered ${resp.status} with no bytes`);
      check(/^audio\//.test(resp.headers.get('content-type') ?? ''), `${u} has Content-Type ${resp.headers.get('content-type')}`);
    }
    await markDocument(page);
  });

  await step('desktop: open a video and watch it', async () => {
    await page.locator('main [data-track][data-title="Sine Ä"] [data-testid=play]').click();
    await playsOn(page, sineURL, 0.2);
    await page.locator('header a', { hasText: 'Libraries' }).click();
    await clickLink(page, 'Videos', '/browse/Videos/');
    await page.locator(`main [data-track][data-url="${clipURL}"] [data-testid=play]`).click();
    await until(page, 'Play on the video did not open its player view', () => location.pathname === '/watch/Videos/clip.mp4' && !!document.querySelector('main [data-testid=video]'));
    await sameDocument(page, 'opening a video');
    await videoPlays(page); // presses play: autoplay starts late on a paced stream
    const a = await audioState(page);
    check(a.paused, 'the player bar kept playing under the video');
    await shot(page, 'desktop-video');
  });

  await context.close();
}

async function phone(browser) {
  const context = await browser.newContext({
    viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  watch(page);

  await step('phone: home and folder fit the screen', async () => {
    await page.goto(base + '/');
    await noSideScroll(page, 'the home page');
    await shot(page, 'phone-home');
    await page.locator('main a', { hasText: 'Music' }).first().tap();
    await until(page, 'tapping Music did not open it', () => location.pathname === '/browse/Music/');
    await page.locator('main a', { hasText: 'Sine Band' }).first().tap();
    await page.locator('main a', { hasText: 'First Album' }).first().tap();
    await until(page, 'First Album did not open', () => location.pathname === '/browse/Music/Sine%20Band/First%20Album/' && !!document.querySelector('main [data-track]'));
    await noSideScroll(page, 'the folder page');
    await shot(page, 'phone-folder');
  });

  await step('phone: play, queue and the player bar', async () => {
    await page.locator('main [data-track][data-title="Sine Ä"] [data-testid=play]').tap();
    await nowPlaying(page, 'Sine Ä');
    await playsOn(page, sineURL, 0.2);
    await page.locator('main [data-track][data-title="Tone"] [data-testid=queue-add]').tap();
    await page.locator('[data-testid=queue-toggle]').tap();
    await until(page, 'the queue panel does not open', () => !document.querySelector('[data-testid=queue]').hidden);
    for (const id of ['play-pause', 'next', 'seek', 'queue-toggle']) {
      const box = await page.locator(`[data-testid=${id}]`).boundingBox();
      check(box && box.x >= 0 && box.x + box.width <= 375 && box.y >= 0 && box.y + box.height <= 812,
        `the player's ${id} is off the phone's screen: ${JSON.stringify(box)}`);
    }
    await noSideScroll(page, 'the page with the queue open');
    await shot(page, 'phone-player-queue');
    await page.locator('[data-testid=queue-toggle]').tap();
  });

  await step('phone: search and an album', async () => {
    const box = page.locator('[data-testid=search]');
    await box.tap();
    await box.pressSequentially('sin', { delay: 60 });
    await until(page, 'no result for "sin"', () => document.querySelectorAll('[data-testid=result]').length > 0);
    await noSideScroll(page, 'the search results');
    await shot(page, 'phone-search');
    await page.goto(base + '/albums');
    await page.locator('main a', { hasText: 'First Album' }).first().tap();
    await until(page, 'the album page did not open', () => location.pathname.startsWith('/albums/') && !!document.querySelector('main [data-track]'));
    await noSideScroll(page, 'the album page');
    await shot(page, 'phone-album');
  });

  await context.close();
}
