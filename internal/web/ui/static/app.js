// MuStServ browse page: play in the page, play a whole folder, copy links.
// No framework, no build step; loaded as a module (deferred).

const footer = document.getElementById("player");
const audio = footer.querySelector("audio");
const video = footer.querySelector("video");
const now = footer.querySelector(".now");
let queue = [];
let pos = -1;

function play(i) {
  if (i < 0 || i >= queue.length) return;
  pos = i;
  const item = queue[i];
  const [on, off] = item.kind === "video" ? [video, audio] : [audio, video];
  off.pause();
  off.hidden = true;
  off.removeAttribute("src");
  on.hidden = false;
  on.src = item.url;
  footer.hidden = false;
  now.textContent = item.title;
  document.title = item.title + " · MuStServ";
  on.play().catch(() => {});
}

for (const el of [audio, video]) {
  el.addEventListener("ended", () => play(pos + 1));
}

function items() {
  return [...document.querySelectorAll("[data-play]")].map((b) => ({
    url: b.dataset.play,
    kind: b.dataset.kind,
    title: b.dataset.title,
  }));
}

document.addEventListener("click", async (ev) => {
  const b = ev.target.closest("button");
  if (!b) return;
  if (b.dataset.play) {
    queue = items();
    play(queue.findIndex((x) => x.url === b.dataset.play));
  } else if (b.hasAttribute("data-playall")) {
    queue = items();
    play(0);
  } else if (b.dataset.copy) {
    const url = new URL(b.dataset.copy, location.href).href;
    try {
      await navigator.clipboard.writeText(url);
      b.textContent = "Copied";
    } catch {
      prompt("Stream link", url);
    }
  }
});
