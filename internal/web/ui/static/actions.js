// The buttons of the pages: Play, Queue, Copy link, Play all, Queue all.
// Tracks are the elements with data-track; their data-* say what to play.
import { flash, announce } from "./util.js";

function trackOf(row) {
  const d = row.dataset;
  return { url: d.url, title: d.title, artist: d.artist || "", album: d.album || "", cover: d.cover || "", id: d.id || "" };
}

// audioIn lists the audio tracks of a list (videos open their own page).
function audioIn(root) {
  return [...root.querySelectorAll("[data-track][data-kind=audio]")];
}

async function copy(text, button) {
  const url = new URL(text, location.href).href;
  try {
    await navigator.clipboard.writeText(url);
  } catch {
    // No clipboard API (a page over plain HTTP on the LAN is not a
    // secure context): the old way, then by hand.
    const ta = document.createElement("textarea");
    ta.value = url;
    ta.setAttribute("readonly", "");
    ta.className = "offscreen";
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    ta.remove();
    if (!ok) {
      prompt("Stream link", url);
      return;
    }
  }
  flash(button, "Copied");
}

export function initActions(player) {
  document.addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (!b || !b.closest("main")) return;
    const main = b.closest("main");
    if (b.dataset.play) {
      const row = b.closest("[data-track]");
      const list = b.closest("[data-tracklist]") || main;
      const rows = audioIn(list);
      const i = rows.indexOf(row);
      if (i < 0) player.setQueue([trackOf(row)], 0);
      else player.setQueue(rows.map(trackOf), i);
    } else if (b.dataset.queue) {
      player.add([trackOf(b.closest("[data-track]"))]);
      flash(b, "✓ Queued");
    } else if (b.hasAttribute("data-playall")) {
      const rows = audioIn(main);
      if (rows.length) player.setQueue(rows.map(trackOf), 0);
      else announce("Nothing to play here");
    } else if (b.hasAttribute("data-queueall")) {
      const rows = audioIn(main);
      player.add(rows.map(trackOf));
      flash(b, `✓ ${rows.length} queued`);
    } else if (b.dataset.copy) {
      copy(b.dataset.copy, b);
    }
  });
}
