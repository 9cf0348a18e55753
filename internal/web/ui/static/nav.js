// Page changes without reloading: same-origin links and GET forms fetch
// the next page and swap its <main> (and title) into this one, so the
// player bar and its <audio> keep playing while browsing.

// Paths that are files or data, not pages: the browser handles them.
const notPages = /^\/(stream|playlist|api|static|metrics|healthz|readyz)(\/|$)/;

let current = null; // the AbortController of the page being fetched

export function isPage(url) {
  return url.origin === location.origin && !notPages.test(url.pathname);
}

// go shows the page at url. push adds a history entry; focus moves the
// focus to the new content (not while the user types a search).
export async function go(url, { push = true, focus = true } = {}) {
  current?.abort();
  const ctrl = (current = new AbortController());
  const main = document.querySelector("main");
  main.setAttribute("aria-busy", "true");
  let res;
  try {
    // A folder link can redirect to a file (/browse/<file> → /stream/):
    // let the browser follow such a redirect itself.
    res = await fetch(url, { signal: ctrl.signal, redirect: "manual", headers: { Accept: "text/html" } });
  } catch (err) {
    if (err.name === "AbortError") return;
    location.assign(url);
    return;
  }
  if (res.type === "opaqueredirect") {
    location.assign(url);
    return;
  }
  const type = res.headers.get("Content-Type") || "";
  const text = await res.text().catch(() => "");
  if (ctrl.signal.aborted) return;
  const doc = type.startsWith("text/html") ? new DOMParser().parseFromString(text, "text/html") : null;
  const next = doc?.querySelector("main");
  if (push) {
    // The same URL again (Enter after search as you type): one entry.
    const same = new URL(url, location.href).href === location.href;
    history[same ? "replaceState" : "pushState"]({}, "", url);
  }
  if (next) {
    main.replaceChildren(...next.childNodes);
    main.dataset.section = next.dataset.section || "";
    document.title = doc.title;
    syncHeader(doc);
  } else {
    // A plain-text error (404, 503): say it in the page.
    const h1 = document.createElement("h1");
    h1.textContent = `${res.status} ${res.statusText || "Error"}`;
    const p = document.createElement("p");
    p.className = "error";
    p.textContent = text.trim();
    main.replaceChildren(h1, p);
    main.dataset.section = "";
    document.title = h1.textContent + " · MuStServ";
  }
  main.removeAttribute("aria-busy");
  if (focus) {
    window.scrollTo(0, 0);
    main.focus({ preventScroll: true });
  }
  document.dispatchEvent(new CustomEvent("mustserv:page"));
}

// syncHeader marks the current section in the nav and shows the page's
// query in the search box, unless the user is typing in it.
function syncHeader(doc) {
  const nav = document.querySelector("header nav");
  const next = doc.querySelector("header nav");
  if (nav && next) nav.replaceChildren(...next.childNodes);
  const box = document.querySelector("[data-testid=search]");
  const nbox = doc.querySelector("[data-testid=search]");
  if (box && nbox && document.activeElement !== box) box.value = nbox.value;
}

export function initNav() {
  document.addEventListener("click", (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest("a[href]");
    if (!a || (a.target && a.target !== "_self") || a.hasAttribute("download")) return;
    const url = new URL(a.href, location.href);
    if (!isPage(url)) return;
    // A link to a place in this page (the skip link) stays native.
    if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
    e.preventDefault();
    go(url.href);
  });
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (e.defaultPrevented || (form.method || "get").toLowerCase() !== "get") return;
    const url = new URL(form.action, location.href);
    if (!isPage(url)) return;
    e.preventDefault();
    url.search = new URLSearchParams(new FormData(form)).toString();
    go(url.href);
  });
  window.addEventListener("popstate", () => go(location.href, { push: false }));
}
