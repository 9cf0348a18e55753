// MuStServ's pages: a player bar that keeps playing while browsing, page
// changes without reloads, search as you type, the buttons of the lists.
// No framework, no build step: ES modules, loaded deferred.
import { Player } from "./player.js";
import { initNav } from "./nav.js";
import { initActions } from "./actions.js";
import { initSearch } from "./search.js";
import { initHome } from "./home.js";

// The sign-in and setup pages have no player bar.
const bar = document.getElementById("player");
const player = bar ? new Player(bar) : null;
initNav();
if (player) initActions(player);
initSearch();
initHome();

// A video page's video and the bar's audio do not play over each other.
function watchVideo() {
  const v = document.querySelector("main video");
  if (v && !v.dataset.bound) {
    v.dataset.bound = "1";
    if (player) v.addEventListener("play", () => player.audio.pause());
    // The autoplay attribute waits until Chromium thinks the whole file
    // can play through, which a paced stream reaches late (8 s or more);
    // play() starts at once, allowed by the click that opened the page.
    v.play().catch(() => {});
  }
}
document.addEventListener("mustserv:page", watchVideo);
watchVideo();
