// Search as you type: the header's box asks /api/search 150 ms after the
// last key and renders the answer as the search page, whose URL it keeps
// in the address bar (/search?q=…, also what the form gives without
// script).
import { el, fmtTime } from "./util.js";

const DEBOUNCE = 150;
const LIMIT = 50;

let timer = 0;
let current = null;

function watchURL(stream) {
  return "/watch/" + stream.slice("/stream/".length);
}

function sized(url, n) {
  return url + "?size=" + n;
}

function trackRow(it) {
  const title = it.title || it.name.replace(/\.[^.]*$/, "");
  const artist = (it.artists || []).join(", ");
  const li = el("li", {
    class: `track ${it.kind}`, "data-testid": "result", "data-track": true, "data-url": it.stream,
    "data-kind": it.kind, "data-title": title, "data-artist": artist || null, "data-album": it.album || null,
    "data-cover": it.cover || null, "data-id": it.id, "data-watch": it.kind === "video" ? watchURL(it.stream) : null,
  });
  li.append(it.cover
    ? el("img", { class: "thumb", src: sized(it.cover, 64), alt: "", width: 40, height: 40, loading: "lazy" })
    : el("span", { class: `thumb ${it.kind}`, "aria-hidden": "true" }));
  const sub = el("span", { class: "sub" }, artist);
  if (it.album) {
    if (artist) sub.append(" · ");
    sub.append(it.album_id ? el("a", { href: "/albums/" + encodeURIComponent(it.album_id) }, it.album) : it.album);
  }
  li.append(
    el("span", { class: "t-main" }, el("a", { class: "name", href: "/items/" + encodeURIComponent(it.id) }, title), sub),
    el("span", { class: "t-dur" }, it.duration_seconds ? fmtTime(it.duration_seconds) : ""),
  );
  const acts = el("span", { class: "row-actions" });
  if (it.kind === "audio") {
    acts.append(
      el("button", { type: "button", "data-play": it.stream, "data-testid": "play", "aria-label": `Play ${title}` }, "▶ Play"),
      el("button", { type: "button", "data-queue": it.stream, "data-testid": "queue-add", "aria-label": `Add ${title} to the queue` }, "+ Queue"),
    );
  } else {
    acts.append(el("a", { class: "button", href: watchURL(it.stream), "data-testid": "play", "aria-label": `Play ${title}` }, "▶ Play"));
  }
  acts.append(el("button", { type: "button", "data-copy": it.stream, "data-testid": "copy-link", "aria-label": `Copy stream link of ${title}` }, "Copy link"));
  li.append(acts);
  return li;
}

function albumCard(a) {
  const sub = [a.artist, a.year || ""].filter(Boolean).join(" · ");
  return el("li", { class: "album-card", "data-testid": "result-album" },
    el("a", { href: "/albums/" + encodeURIComponent(a.id) },
      a.cover ? el("img", { src: sized(a.cover, 256), alt: "", width: 256, height: 256, loading: "lazy" })
        : el("span", { class: "nocover", "aria-hidden": "true" }, "♪"),
      el("span", { class: "a-name" }, a.name)),
    el("span", { class: "a-sub" }, sub));
}

function artistRow(a) {
  return el("li", { "data-testid": "result-artist" },
    el("a", { class: "name", href: "/artists/" + encodeURIComponent(a.id) }, a.name), " ",
    el("span", { class: "meta" }, `${plural(a.albums, "album", "albums")} · ${plural(a.tracks, "track", "tracks")}`));
}

// plural writes a count with its noun: "1 track", "1,234 tracks".
function plural(n, one, many) {
  return n === 1 ? "1 " + one : `${n.toLocaleString("en")} ${many}`;
}

function actions(q) {
  const qs = "?q=" + encodeURIComponent(q);
  const box = el("div", { class: "actions", role: "group", "aria-label": "These results" },
    el("button", { type: "button", "data-playall": true, "data-testid": "play-all" }, "▶ Play all"), " ",
    el("button", { type: "button", "data-queueall": true, "data-testid": "queue-all" }, "+ Queue all"), " ");
  for (const [name, id] of [["M3U8", "m3u8"], ["PLS", "pls"], ["XSPF", "xspf"]]) {
    box.append(el("a", { class: "button", href: `/api/search/playlist.${id}${qs}`, download: true,
      "data-testid": `playlist-${id}`, "aria-label": `${name} playlist` }, name));
  }
  return box;
}

// render shows an answer of /api/search (or a message) in the results.
function render(box, q, data, error) {
  const out = [];
  if (error) {
    out.push(el("p", { class: "error", role: "alert" }, error));
  } else if (!q) {
    out.push(el("p", { class: "empty" }, "Type in the search box: words match titles, artists, albums, genres and paths, and a word's beginning is enough."));
  } else {
    out.push(el("p", { class: "meta", "aria-live": "polite" }, `${plural(data.total, "track matches", "tracks match")} “${q}”.`));
    if (data.artists.length) out.push(el("h2", {}, "Artists"), el("ul", { class: "listing artists" }, ...data.artists.map(artistRow)));
    if (data.albums.length) out.push(el("h2", {}, "Albums"), el("ul", { class: "albums" }, ...data.albums.map(albumCard)));
    if (data.items.length) {
      out.push(el("h2", {}, "Tracks"), actions(q), el("ol", { class: "tracks", "data-tracklist": true }, ...data.items.map(trackRow)));
      if (data.total > data.items.length) {
        out.push(el("nav", { class: "pager", "aria-label": "Pages" },
          el("a", { href: `/search?q=${encodeURIComponent(q)}&page=2`, rel: "next" }, "More results →")));
      }
    }
  }
  box.replaceChildren(...out);
}

// resultsBox returns the search page's result area, turning the current
// page into the search page first if it is another one.
function resultsBox() {
  const main = document.querySelector("main");
  let box = main.querySelector("[data-search-results]");
  if (main.dataset.section === "search" && box) return box;
  box = el("div", { class: "search-results", "data-search-results": true });
  main.replaceChildren(el("h1", {}, "Search"), box);
  main.dataset.section = "search";
  for (const a of document.querySelectorAll("header nav a")) a.removeAttribute("aria-current");
  return box;
}

async function run(input) {
  const q = input.value.trim();
  const url = new URL("/search", location.href);
  if (q) url.searchParams.set("q", q);
  const onSearch = document.querySelector("main").dataset.section === "search";
  // One history entry per search, not per key.
  if (onSearch) history.replaceState({}, "", url);
  else history.pushState({}, "", url);
  document.title = (q ? q + " – Search" : "Search") + " · MuStServ";
  const box = resultsBox();
  current?.abort();
  if (!q) {
    render(box, q);
    return;
  }
  const ctrl = (current = new AbortController());
  let res, data;
  try {
    res = await fetch(`/api/search?q=${encodeURIComponent(q)}&limit=${LIMIT}`, { signal: ctrl.signal, headers: { Accept: "application/json" } });
    data = await res.json();
  } catch (err) {
    if (err.name !== "AbortError") render(box, q, null, "The search failed: " + err.message);
    return;
  }
  if (ctrl.signal.aborted) return;
  if (!res.ok) render(box, q, null, data.error || res.statusText);
  else render(box, q, data);
  document.dispatchEvent(new CustomEvent("mustserv:page"));
}

export function initSearch() {
  const input = document.querySelector("[data-testid=search]");
  if (!input) return;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => run(input), DEBOUNCE);
  });
  // Enter submits the form (nav.js shows the server's page): drop the
  // pending live search so it does not overwrite that page.
  input.form?.addEventListener("submit", () => clearTimeout(timer));
}
