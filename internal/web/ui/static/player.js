// The player bar: one <audio> that survives page changes (nav.js swaps
// <main> only), a queue, keyboard shortcuts and the Media Session.
import { fmtTime, isTyping, handlesSpace, announce } from "./util.js";

const STORE = "mustserv.player";

export class Player {
  constructor(root) {
    this.root = root;
    this.audio = root.querySelector("audio");
    this.q = (id) => root.querySelector(`[data-testid="${id}"]`);
    this.ppBtn = this.q("play-pause");
    this.seek = this.q("seek");
    this.timeNow = this.q("time");
    this.timeDur = this.q("duration");
    this.volume = this.q("volume");
    this.title = this.q("now-playing");
    this.artist = root.querySelector(".np-artist");
    this.art = root.querySelector(".art");
    this.panel = this.q("queue");
    this.list = this.panel.querySelector("ol");
    this.qBtn = this.q("queue-toggle");
    this.queue = [];
    this.pos = -1;
    this.dragging = false;
    this.bind();
    this.restore();
  }

  bind() {
    const a = this.audio;
    this.ppBtn.addEventListener("click", () => this.toggle());
    this.q("next").addEventListener("click", () => this.next());
    this.q("prev").addEventListener("click", () => this.prev());
    this.q("queue-clear").addEventListener("click", () => this.clear());
    this.qBtn.addEventListener("click", () => {
      const open = this.panel.hidden;
      this.panel.hidden = !open;
      this.qBtn.setAttribute("aria-expanded", String(open));
    });
    this.list.addEventListener("click", (e) => {
      const li = e.target.closest("li");
      if (!li) return;
      const i = [...this.list.children].indexOf(li);
      if (e.target.closest("[data-testid=queue-remove]")) this.remove(i);
      else if (e.target.closest("[data-testid=queue-item]")) this.play(i);
    });
    this.seek.addEventListener("input", () => {
      this.dragging = true;
      this.timeNow.textContent = fmtTime(+this.seek.value);
    });
    this.seek.addEventListener("change", () => {
      this.dragging = false;
      this.seekTo(+this.seek.value);
    });
    const vol = +(localStorage.getItem(STORE + ".volume") ?? 1);
    a.volume = this.volume.value = Number.isFinite(vol) ? Math.min(1, Math.max(0, vol)) : 1;
    this.volume.addEventListener("input", () => {
      a.volume = +this.volume.value;
      localStorage.setItem(STORE + ".volume", String(a.volume));
    });
    a.addEventListener("timeupdate", () => this.showTime());
    a.addEventListener("durationchange", () => this.showTime());
    a.addEventListener("play", () => this.showState());
    a.addEventListener("pause", () => { this.showState(); this.save(); });
    a.addEventListener("ended", () => {
      if (this.pos + 1 < this.queue.length) this.play(this.pos + 1);
    });
    a.addEventListener("error", () => {
      if (!a.getAttribute("src")) return;
      announce("Cannot play " + (this.queue[this.pos]?.title ?? "this file"));
      if (this.pos + 1 < this.queue.length) this.play(this.pos + 1);
    });
    document.addEventListener("keydown", (e) => this.key(e));
    window.addEventListener("pagehide", () => this.save());
    this.mediaSession();
  }

  // key handles the shortcuts: space play/pause, ←/→ seek 10 s,
  // Shift+←/→ previous/next; never while the user types in a field.
  key(e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === " " || e.code === "Space") {
      if (handlesSpace(e.target)) return;
      e.preventDefault();
      const v = this.pageVideo();
      if (v && (this.audio.paused || !v.paused)) {
        v.paused ? v.play().catch(() => {}) : v.pause();
      } else {
        this.toggle();
      }
      return;
    }
    if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
    if (isTyping(e.target) || e.target.closest?.("video, audio")) return;
    if (this.pos < 0) return;
    e.preventDefault();
    const fwd = e.key === "ArrowRight";
    if (e.shiftKey) fwd ? this.next() : this.prev();
    else this.seekTo(this.audio.currentTime + (fwd ? 10 : -10));
  }

  // pageVideo is the video of a player view, if one is shown.
  pageVideo() {
    return document.querySelector("main video");
  }

  mediaSession() {
    if (!("mediaSession" in navigator)) return;
    const ms = navigator.mediaSession;
    const set = (action, fn) => {
      try { ms.setActionHandler(action, fn); } catch { /* not supported by this browser */ }
    };
    set("play", () => this.resume());
    set("pause", () => this.audio.pause());
    set("previoustrack", () => this.prev());
    set("nexttrack", () => this.next());
    set("seekbackward", (d) => this.seekTo(this.audio.currentTime - (d.seekOffset || 10)));
    set("seekforward", (d) => this.seekTo(this.audio.currentTime + (d.seekOffset || 10)));
    set("seekto", (d) => this.seekTo(d.seekTime));
  }

  // setQueue replaces the queue and plays from start.
  setQueue(tracks, start = 0) {
    if (!tracks.length) return;
    this.queue = tracks.slice();
    this.play(Math.max(0, Math.min(start, tracks.length - 1)));
  }

  // add appends tracks; the first ever is loaded, not played.
  add(tracks) {
    if (!tracks.length) return;
    const empty = this.queue.length === 0;
    this.queue.push(...tracks);
    if (empty) this.load(0, false);
    this.renderQueue();
    this.save();
  }

  play(i) { this.load(i, true); }

  load(i, autoplay, at = 0) {
    const t = this.queue[i];
    if (!t) return;
    this.pos = i;
    const a = this.audio;
    a.src = t.url;
    if (at > 0) {
      a.preload = "metadata";
      a.addEventListener("loadedmetadata", () => { a.currentTime = at; }, { once: true });
    }
    this.root.hidden = false;
    this.title.textContent = t.title || t.url;
    this.artist.textContent = [t.artist, t.album].filter(Boolean).join(" · ");
    if (t.cover) {
      this.art.src = t.cover + "?size=64";
      this.art.hidden = false;
    } else {
      this.art.removeAttribute("src");
      this.art.hidden = true;
    }
    if ("mediaSession" in navigator && "MediaMetadata" in window) {
      const art = t.cover ? [64, 256, 512].map((n) => ({
        src: new URL(t.cover + "?size=" + n, location.href).href, sizes: `${n}x${n}`,
      })) : [];
      navigator.mediaSession.metadata = new MediaMetadata({
        title: t.title || "", artist: t.artist || "", album: t.album || "", artwork: art,
      });
    }
    if (autoplay) {
      this.pauseVideo();
      a.play().catch(() => this.showState());
    }
    this.renderQueue();
    this.showState();
    this.save();
  }

  resume() {
    if (this.pos < 0) {
      if (this.queue.length) this.play(0);
      return;
    }
    this.pauseVideo();
    this.audio.play().catch(() => {});
  }

  toggle() {
    if (this.pos < 0 || this.audio.paused) this.resume();
    else this.audio.pause();
  }

  next() {
    if (this.pos + 1 < this.queue.length) this.play(this.pos + 1);
  }

  prev() {
    // As CD players do: back to the start first, then the previous track.
    if (this.audio.currentTime > 3 || this.pos <= 0) this.seekTo(0);
    else this.play(this.pos - 1);
  }

  seekTo(t) {
    const a = this.audio;
    if (this.pos < 0 || !Number.isFinite(t)) return;
    const d = Number.isFinite(a.duration) ? a.duration : Infinity;
    a.currentTime = Math.max(0, Math.min(t, d));
    this.showTime();
  }

  remove(i) {
    if (i < 0 || i >= this.queue.length) return;
    const playing = !this.audio.paused;
    this.queue.splice(i, 1);
    if (i < this.pos) {
      this.pos--;
    } else if (i === this.pos) {
      if (this.queue.length === 0) return this.clear();
      this.load(Math.min(i, this.queue.length - 1), playing);
      return;
    }
    this.renderQueue();
    this.save();
  }

  clear() {
    this.queue = [];
    this.pos = -1;
    const a = this.audio;
    a.pause();
    a.removeAttribute("src");
    a.load();
    this.title.textContent = "";
    this.artist.textContent = "";
    this.art.hidden = true;
    this.root.hidden = true;
    this.panel.hidden = true;
    this.qBtn.setAttribute("aria-expanded", "false");
    if ("mediaSession" in navigator) navigator.mediaSession.metadata = null;
    this.renderQueue();
    this.showState();
    this.save();
  }

  pauseVideo() {
    const v = this.pageVideo();
    if (v && !v.paused) v.pause();
  }

  showState() {
    const playing = this.pos >= 0 && !this.audio.paused;
    // The label says what the button does; CSS shows the matching icon.
    this.ppBtn.dataset.playing = String(playing);
    this.ppBtn.setAttribute("aria-label", playing ? "Pause" : "Play");
    this.q("prev").disabled = this.pos < 0;
    this.q("next").disabled = this.pos + 1 >= this.queue.length;
    if ("mediaSession" in navigator) {
      navigator.mediaSession.playbackState = this.pos < 0 ? "none" : playing ? "playing" : "paused";
    }
  }

  showTime() {
    const a = this.audio;
    const d = Number.isFinite(a.duration) ? a.duration : 0;
    this.seek.max = String(d);
    this.timeDur.textContent = fmtTime(d);
    if (!this.dragging) {
      this.seek.value = String(a.currentTime);
      this.timeNow.textContent = fmtTime(a.currentTime);
      this.seek.setAttribute("aria-valuetext", `${fmtTime(a.currentTime)} of ${fmtTime(d)}`);
    }
    if (d && "mediaSession" in navigator && navigator.mediaSession.setPositionState) {
      try {
        navigator.mediaSession.setPositionState({ duration: d, position: Math.min(a.currentTime, d), playbackRate: a.playbackRate });
      } catch { /* a position past a changing duration */ }
    }
  }

  renderQueue() {
    const items = this.queue.map((t, i) => {
      const li = document.createElement("li");
      if (i === this.pos) li.setAttribute("aria-current", "true");
      const jump = document.createElement("button");
      jump.type = "button";
      jump.className = "q-jump";
      jump.dataset.testid = "queue-item";
      jump.textContent = t.artist ? `${t.title} — ${t.artist}` : t.title;
      jump.setAttribute("aria-label", `Play ${t.title}`);
      const rm = document.createElement("button");
      rm.type = "button";
      rm.className = "q-remove";
      rm.dataset.testid = "queue-remove";
      rm.textContent = "✕";
      rm.setAttribute("aria-label", `Remove ${t.title} from the queue`);
      li.append(jump, rm);
      return li;
    });
    this.list.replaceChildren(...items);
    this.qBtn.querySelector(".qcount").textContent = String(this.queue.length);
    this.showState();
  }

  // save keeps the queue across a reload of the tab (not across tabs).
  save() {
    try {
      sessionStorage.setItem(STORE, JSON.stringify({ queue: this.queue, pos: this.pos, time: this.audio.currentTime || 0 }));
    } catch { /* storage full or disabled: the queue lives in memory only */ }
  }

  restore() {
    let s;
    try { s = JSON.parse(sessionStorage.getItem(STORE) || "null"); } catch { s = null; }
    if (!s || !Array.isArray(s.queue) || !s.queue.length) return;
    this.queue = s.queue.filter((t) => t && typeof t.url === "string" && t.url.startsWith("/stream/"));
    if (!this.queue.length) return;
    this.load(Math.max(0, Math.min(s.pos | 0, this.queue.length - 1)), false, +s.time || 0);
  }
}
