// The admin's streams page follows the server: while it is shown, its
// list ([data-streams]) is fetched again every few seconds and swapped in,
// without reloading (the player keeps playing). The Stop buttons are plain
// forms, so the page works without this script. Loaded for admins only.

const every = 5000; // ms between refreshes
let timer = 0;

async function refresh() {
  timer = 0;
  const cur = document.querySelector("[data-streams]");
  if (!cur) return; // another page: the loop ends until one comes back
  // Not while hidden, nor under the admin's pointer or focus (a Stop
  // button about to be pressed must not move).
  if (!document.hidden && !cur.contains(document.activeElement) && !cur.matches(":hover")) {
    let res;
    try {
      res = await fetch("/admin/streams", { redirect: "manual", headers: { Accept: "text/html" } });
    } catch {
      res = null; // offline for a moment: try again next time
    }
    if (res && !res.ok) return; // signed out or no longer an admin: stop
    if (res) {
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const next = doc.querySelector("[data-streams]");
      const now = document.querySelector("[data-streams]");
      if (next && now && !now.contains(document.activeElement)) now.replaceWith(next);
    }
  }
  schedule();
}

// schedule arranges the next refresh if the list is on the page and none
// is pending: one timer at most, however often pages change.
function schedule() {
  if (!timer && document.querySelector("[data-streams]")) timer = setTimeout(refresh, every);
}

document.addEventListener("mustserv:page", schedule);
schedule();
